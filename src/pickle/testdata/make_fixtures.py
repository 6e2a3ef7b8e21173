"""Writes the pickles that the inspector's Rust tests read.

Run from the repository root with the venv's Python after changing the pickler:
    .venv/bin/python src/pickle/testdata/make_fixtures.py
The tests check names and counts, not bytes, so most pickler changes need no rerun.
The `*.native-v0.pkl` files were written before the native writer's dense
function shape (`new_function`); they stay as they are, to check that the
inspector still reads the earlier shape; `recursive.native-v1.pkl` was
written while a recursive function's skeleton was filled by `fill_function`
(now a second `new_function` call), and stays as it is for the same reason.
The `*.native-flat.pkl` files have the state's globals as flat tuples and a
recursive function in one call, its own global named in its state; the
`closure.native.pkl` and `recursive.native.pkl` beside them were written
before (globals as dicts, the recursive function as a skeleton filled by a
second `new_function` call) and are not rewritten, for the same reason.
The `*.native-blob.pkl` files are today's shape of those two: the code's
names as one blob, its counts packed, the state's globals named by their
index in `co_names`; the `native-flat` ones stay as they were written.
"""

import enum
import json
import pathlib
import types

import flightpickle

HERE = pathlib.Path(__file__).parent
SCALE = 3


def make_adder(n):
    def add(x):
        return json.dumps(x + n * SCALE)

    return add


def fibonacci(n):
    return n if n < 2 else fibonacci(n - 1) + fibonacci(n - 2)


class Shape:
    sides = 0

    def area(self):
        return 0


class Tool:
    @property
    def size(self):
        return 1

    @classmethod
    def named(cls):
        return cls.__name__

    @staticmethod
    def unit():
        return "cm"


class Colour(enum.Enum):
    RED = 1


plugins = types.ModuleType("plugins")
exec("def hello():\n    return 'hi'\n", plugins.__dict__)

FIXTURES = {
    "closure": make_adder(2),
    "class": Shape,
    "enum": Colour,
    "dynamic_module": plugins,
    "recursive": fibonacci,
    "descriptors": Tool,
}
NATIVE_ONLY = {"recursive", "descriptors"}
BLOB = {"closure", "recursive"}

for name, obj in FIXTURES.items():
    for target in ("native",) if name in NATIVE_ONLY else ("native", "cloudpickle"):
        # Today's native shape of these goes to `native-blob`; `native` and
        # `native-flat` keep the older ones.
        suffix = "native-blob" if target == "native" and name in BLOB else target
        data = flightpickle.dumps(obj, protocol=5, target=target)
        (HERE / f"{name}.{suffix}.pkl").write_bytes(data)
