"""Writes pickles in the function shape flightpickle wrote before
`new_function` (`make_function` + `function_setstate`), which every later
release must still load. They were written once, by that release; the
test reads them as they are. Kept to show what they hold:
    python tests/pickler/old_pickles/make.py   (with the old release installed)
"""

import math
import pathlib

import flightpickle

HERE = pathlib.Path(__file__).parent
STEP = 2


def make_counter(start, *, step=STEP, tags=frozenset({"b", "a"})):
    """Counts up from start."""

    def count(n: int = 1) -> int:
        return start + n * step + len(tags) + int(math.sqrt(16))

    count.kind = "counter"
    return count


def fibonacci(n):
    return n if n < 2 else fibonacci(n - 1) + fibonacci(n - 2)


def with_empty_cell():
    def inner():
        return later

    cell_was_empty = inner
    later = None
    del later
    return cell_was_empty


class Shape:
    def __init__(self, sides):
        self.sides = sides

    def describe(self):
        return f"{type(self).__name__} with {self.sides} sides"


if __name__ == "__main__":
    samples = {
        "counter": (make_counter(10), make_counter),
        "fibonacci": fibonacci,
        "empty_cell": with_empty_cell(),
        "shape": Shape,
    }
    for name, obj in samples.items():
        (HERE / f"{name}.pkl").write_bytes(flightpickle.dumps(obj, protocol=5))
