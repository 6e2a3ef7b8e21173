"""Writes pickles in the shape flightpickle wrote while a function whose
state refers back to it was filled by `flightpickle._fill_function` (a
second name found on load), which every later release must still load.
They were written once, by that release; the test reads them as they are.
Kept to show what they hold:
    python tests/pickler/old_pickles/make_fill_function.py   (with that release installed)
"""

import pathlib

import flightpickle

HERE = pathlib.Path(__file__).parent


def countdown(n):
    return 0 if n == 0 else countdown(n - 1) + 1


if __name__ == "__main__":
    (HERE / "fill_function_recursive.pkl").write_bytes(flightpickle.dumps(countdown, protocol=5))
