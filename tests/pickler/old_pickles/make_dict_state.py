"""Writes pickles in the shape flightpickle wrote while `new_function`'s
state carried the globals the code uses and its modules as dicts, and a
function whose only way back to itself was a global made a skeleton that a
second `new_function(func, state)` call filled; every later release must
still load them. They were written once, by that release; the test reads
them as they are. Kept to show what they hold:
    python tests/pickler/old_pickles/make_dict_state.py   (with that release installed)
"""

import math
import pathlib

import flightpickle

HERE = pathlib.Path(__file__).parent
BASE = 3


def digits(n):
    """Counts the digits of n, recursing through its own global."""
    return 1 if n < 10 else digits(n // 10) + 1


def hypotenuse(a, b):
    return round(math.sqrt(a * a + b * b), 2) + BASE


if __name__ == "__main__":
    (HERE / "recursive_dict_state.pkl").write_bytes(flightpickle.dumps(digits, protocol=5))
    (HERE / "globals_dict_state.pkl").write_bytes(flightpickle.dumps(hypotenuse, protocol=5))
