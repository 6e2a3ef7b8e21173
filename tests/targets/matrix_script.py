"""Builds the target matrix in ``__main__`` (so it all travels by value),
pickles each entry with one wire target and writes, with plain pickle:
``{name: (payload, expected, tracked)}``. ``payload`` holds ``(obj, probe)``;
``probe(obj)`` returns plain data, ``expected`` is what it returns here.

Usage: python matrix_script.py TARGET OUTPUT
"""

import collections
import dataclasses
import enum
import logging
import os
import pickle
import sys
import typing

import flightpickle

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import byvalue_helpers  # noqa: E402

flightpickle.register_pickle_by_value(byvalue_helpers)

OFFSET = 10
TAGS = {"red", "green", "blue", "cyan", "magenta"}


def add(x, y=2):
    return x + y + OFFSET


def make_counter():
    count = 0

    def inc(step=1):
        nonlocal count
        count += step
        return count
    return inc


def fib(n):
    return n if n < 2 else fib(n - 1) + fib(n - 2)


def is_tag(word):
    return word in {"red", "green", "blue"} and word in TAGS


class Shape:
    KINDS = frozenset({"circle", "square", "triangle"})

    def __init__(self, size):
        self._size = size

    @property
    def size(self):
        return self._size

    @classmethod
    def unit(cls):
        return cls(1)

    @staticmethod
    def sides(kind):
        return {"circle": 0, "square": 4}.get(kind, 3)

    def area(self):
        return self._size ** 2


class Outer:
    class Inner:
        __slots__ = ("x",)

        def __init__(self, x):
            self.x = x


class Color(enum.Enum):
    RED = 1
    GREEN = 2

    def label(self):
        return self.name.lower()


@dataclasses.dataclass
class Item:
    name: str
    qty: int = 1
    tags: list = dataclasses.field(default_factory=list)

    def total(self):
        return self.qty * 2


T = typing.TypeVar("T", bound=int)


def first(items: typing.List[T]) -> T:
    return items[0]


def entries():
    counter = make_counter()
    counter(5)
    data = collections.OrderedDict(b=2, a=1)
    return {
        "function": (add, lambda f: [f(1), f(1, 5), f.__name__, f.__defaults__]),
        "lambda": (lambda s: s.upper() + str(OFFSET), lambda f: f("ab")),
        "closure": (counter, lambda f: [f(), f(10)]),
        "recursive": (fib, lambda f: f(10)),
        "string_sets": (is_tag, lambda f: [f("red"), f("cyan")]),
        "class": (Shape, lambda c: [c(3).area(), c(3).size, c.unit().size, c.sides("square"),
                                    sorted(c.KINDS), c.__name__, c.__qualname__,
                                    isinstance(c(2), c)]),
        "instance": (Shape(4), lambda s: [s.area(), type(s).__name__]),
        "nested_slots_class": (Outer.Inner, lambda c: [c.__qualname__, c(3).x,
                                                       hasattr(c(3), "__dict__")]),
        "enum": (Color, lambda e: [[m.name for m in e], e(2).label(), e.RED.value,
                                   e["GREEN"] is e.GREEN]),
        "enum_member": (Color.GREEN, lambda m: [m.name, m.value, m.label()]),
        "dataclass": (Item, lambda c: [repr(c("x", 3)), c("y").total(),
                                       [f.name for f in dataclasses.fields(c)],
                                       dataclasses.asdict(c("z", tags=["t"]))]),
        "typevar": (T, lambda t: [t.__name__, t.__bound__.__name__, repr(t)]),
        "generic_function": (first, lambda f: [f([4, 5]), sorted(f.__annotations__)]),
        "byvalue_module_function": (byvalue_helpers.scaled, lambda f: f(3)),
        "byvalue_module_class": (byvalue_helpers.Meter, lambda c: c(2).reading()),
        "byvalue_module": (byvalue_helpers, lambda m: [m.RATE, m.scaled(2), m.__name__]),
        "dict_views": ((data.keys(), {"k": 1}.values(), {"k": 1}.items()),
                       lambda v: [list(v[0]), list(v[1]), list(v[2]), type(v[0]).__name__]),
        "logger": (logging.getLogger("flightpickle.matrix"), lambda lg: [lg.name, type(lg).__name__]),
        "root_logger": (logging.getLogger(), lambda lg: lg.name),
    }


TRACKED = {"class", "nested_slots_class", "enum", "dataclass", "typevar", "byvalue_module_class"}


def main(target, output):
    table = {}
    for name, (obj, probe) in entries().items():
        payload = flightpickle.dumps((obj, probe), protocol=5, target=target)
        table[name] = (payload, probe(obj), name in TRACKED)
    with open(output, "wb") as file:
        pickle.dump(table, file, protocol=5)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
