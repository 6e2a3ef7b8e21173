"""Writes pickles in the shape flightpickle wrote while its reconstructors
were found as `flightpickle._reconstruct.<name>` (`new_function` and
`fill_function` there), which every later release must still load. They
were written once, by that release; the test reads them as they are.
Kept to show what they hold:
    python tests/pickler/old_pickles/make_new_function.py   (with that release installed)
"""

import math
import pathlib

import flightpickle

HERE = pathlib.Path(__file__).parent
SCALE = 3


def make_scaler(base):
    def scaled(x):
        return (x + base) * SCALE + int(math.sqrt(16))

    return scaled


if __name__ == "__main__":
    samples = {
        "new_function_lambda": lambda x: x * x + SCALE,
        "new_function_closure": make_scaler(4),
    }
    for name, obj in samples.items():
        (HERE / f"{name}.pkl").write_bytes(flightpickle.dumps(obj, protocol=5))
