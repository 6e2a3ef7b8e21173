"""Writes pickles in the shape flightpickle wrote while a function's code
fields carried its six counts as ints and its names as tuples of strs, and
its state named the globals it sets by their names; every later release must
still load them. They were written once, by that release; the test reads
them as they are. Kept to show what they hold:
    python tests/pickler/old_pickles/make_name_tuples.py   (with that release installed)
"""

import math
import pathlib

import flightpickle

HERE = pathlib.Path(__file__).parent
OFFSET = 3


def digits(n):
    """Counts the digits of n, recursing through its own global."""
    return 1 if n < 10 else digits(n // 10) + 1


def hypotenuse(a, b):
    return round(math.sqrt(a * a + b * b), 2) + OFFSET


def make_weigher(weight):
    def weigh(values):
        return [value * weight + OFFSET for value in values]

    return weigh


if __name__ == "__main__":
    samples = {
        "recursive_name_tuples": digits,
        "globals_name_tuples": hypotenuse,
        "closure_name_tuples": make_weigher(2),
    }
    for name, obj in samples.items():
        (HERE / f"{name}.pkl").write_bytes(flightpickle.dumps(obj, protocol=5))
