"""Corrupted, truncated and crafted pickles make ``loads`` raise; they never
crash the interpreter. Loading runs in worker processes so that a crash is
seen as a signal, with the input that caused it."""

import enum
import pickle
import subprocess
import sys
import time
import types
import typing

import pytest

import flightpickle
from flightpickle import _reconstruct

# The worker reports the index of each input before loading it, so that a
# crash names its input; it is restarted after it. Address space is capped
# so that a corrupted length asks for memory in vain instead of taking it.
# An input that loads is loaded thrice: a code object is made, then kept,
# then found in the cache, and each can go wrong. Development mode checks
# the heap's blocks as they are freed, so that a write past one's end
# aborts the worker at once instead of corrupting what a later input reads.
WORKER = r"""
import pickle, resource, sys
resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))
inputs = pickle.load(open(sys.argv[1], "rb"))
for index in range(int(sys.argv[2]), len(inputs)):
    print(index, end=" ", flush=True)
    try:
        pickle.loads(inputs[index])
        pickle.loads(inputs[index])
        pickle.loads(inputs[index])
        print("loaded", flush=True)
    except BaseException as e:
        print(type(e).__name__, flush=True)
print("done", flush=True)
"""

TIME_BUDGET = 240


def outcomes(inputs, tmp_path):
    """{index: outcome} for loading each input: 'loaded', an exception
    name, 'signal N' for a crash or 'hang'."""
    path = tmp_path / "inputs.pickle"
    path.write_bytes(pickle.dumps(inputs))
    results, start = {}, 0
    deadline = time.monotonic() + TIME_BUDGET
    while start < len(inputs):
        proc = subprocess.Popen([sys.executable, "-I", "-X", "dev", "-c", WORKER, str(path), str(start)],
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        try:
            out, _ = proc.communicate(timeout=max(deadline - time.monotonic(), 1))
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
        lines = out.splitlines()
        for line in lines:
            index, _, outcome = line.partition(" ")
            if outcome:
                results[int(index)] = outcome
        if lines and lines[-1] == "done":
            break
        last = int(lines[-1].split()[0]) if lines else start
        results[last] = f"signal {-proc.returncode}" if proc.returncode and proc.returncode < 0 else "hang"
        if results[last] == "hang":
            break
        start = last + 1
    return results


def payloads():
    offset = 10

    def add(x, *, scale: int = 2):
        return (x + offset) * scale

    def longest(words):
        # Codes nested in the function's own: the cache finds them by identity.
        lengths = {word: len(word) for word in words}
        return max(lengths, key=lambda word: (lengths[word], word))

    class Shape:
        __slots__ = ("sides",)

        def __init__(self, sides):
            self.sides = sides

        @property
        def double(self):
            return 2 * self.sides

        @classmethod
        def square(cls):
            return cls(4)

    class Color(enum.Enum):
        RED = 1
        BLUE = 2

    T = typing.TypeVar("T", bound=int)
    misc = [types.CellType(1), {"a": 1}.items(), types.MappingProxyType({"k": [1]}), T, memoryview(b"xyz")]
    return [
        flightpickle.dumps(add, protocol=5),
        flightpickle.dumps(longest, protocol=5),
        flightpickle.dumps((Shape, Shape(3)), protocol=2),
        flightpickle.dumps((Color, Color.BLUE), protocol=5),
        flightpickle.dumps(misc, protocol=4),
    ]


def mutations(payload):
    """Every truncation, and every single-bit flip."""
    found = [payload[:cut] for cut in range(len(payload))]
    for index in range(len(payload)):
        for bit in (1, 2, 4, 8, 16, 32, 64, 128):
            flipped = bytearray(payload)
            flipped[index] ^= bit
            found.append(bytes(flipped))
    return found


def test_truncated_and_flipped_payloads_never_crash(tmp_path):
    inputs = [mutated for payload in payloads() for mutated in mutations(payload)]
    results = outcomes(inputs, tmp_path)
    bad = {index: outcome for index, outcome in results.items() if outcome.startswith(("signal", "hang"))}
    assert not bad, {index: (outcome, inputs[index]) for index, outcome in bad.items()}
    assert len(results) == len(inputs)
    assert list(results.values()).count("loaded") < len(inputs)


class Call:
    """Pickles as a call of ``func`` with ``args``: a crafted pickle."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


class WithState:
    """Pickles as ``setter(made, state)`` after making ``made``."""

    def __init__(self, make, state, setter):
        self.make, self.state, self.setter = make, state, setter

    def __reduce__(self):
        return self.make.func, self.make.args, self.state, None, None, self.setter


CODE = (lambda: 1).__code__
CLOSURE_CODE = (lambda: (lambda: CODE))().__code__
R = _reconstruct

CRAFTED = {
    "make_function with a non-code": Call(R.make_function, "not code", {}, None, None, None),
    "make_function with a non-dict": Call(R.make_function, CODE, [1], None, None, None),
    "make_function with too few": Call(R.make_function, CODE),
    "make_function with bad cells": Call(R.make_function, CLOSURE_CODE, {}, None, None, (1, 2)),
    "function_setstate junk state": WithState(Call(R.make_function, CODE, {}, None, None, None),
                                              "junk", R.function_setstate),
    "function_setstate short state": WithState(Call(R.make_function, CODE, {}, None, None, None),
                                               ({},), R.function_setstate),
    "function_setstate bad slots": WithState(Call(R.make_function, CODE, {}, None, None, None),
                                             ({}, {"__code__": 5, 3: 4}), R.function_setstate),
    "function_setstate non-function": Call(R.function_setstate, 42, ({}, {})),
    "function_setstate non-cells": WithState(Call(R.make_function, CODE, {}, None, None, None),
                                             ({}, {"__closure__": ("x",)}), R.function_setstate),
    "make_skeleton_class bad bases": Call(R.make_skeleton_class, type, "C", (1, 2), {}, None, None),
    "make_skeleton_class bad metaclass": Call(R.make_skeleton_class, len, "C", (), {}, None, None),
    "make_skeleton_class bad kwargs": Call(R.make_skeleton_class, type, "C", (), {1: 2}, None, None),
    "make_skeleton_class bad tracker id": Call(R.make_skeleton_class, type, "C", (), {}, 12, None),
    "make_skeleton_class non-str name": Call(R.make_skeleton_class, type, 7, (), {}, None, None),
    "make_skeleton_enum non-enum base": Call(R.make_skeleton_enum, (3,), "E", "E", {}, "m", None),
    "make_skeleton_enum bad members": Call(R.make_skeleton_enum, (enum.Enum,), "E", "E", {"A": 1, "A ": []},
                                           "m", None),
    "class_setstate on a non-class": Call(R.class_setstate, 5, ({"x": 1}, {})),
    "class_setstate junk state": Call(R.class_setstate, type("K", (), {}), (1,)),
    "class_setstate bad registry": Call(R.class_setstate, type("K", (), {}), ({"_abc_impl": [int]}, {})),
    "make_cell without a value": Call(R.make_cell),
    "make_empty_cell with a value": Call(R.make_empty_cell, 1),
    "builtin_type non-str": Call(R.builtin_type, 5),
    "subimport empty name": Call(R.subimport, ""),
    "subimport non-str": Call(R.subimport, 5),
    "dynamic_subimport non-dict": Call(R.dynamic_subimport, "m", [1]),
    "make_dict_items non-pairs": Call(R.make_dict_items, [1, 2]),
    "make_dict_values non-iterable": Call(R.make_dict_values, 5),
    "make_typevar bad constraints": Call(R.make_typevar, "T", None, 5, False, False, None),
    "make_typevar both variances": Call(R.make_typevar, "T", None, (), True, True, None),
    "make_paramspec non-str": Call(R.make_paramspec, 5, None, False, False, None),
    "make_typevartuple non-str": Call(R.make_typevartuple, None, None),
    "make_newtype bad module": Call(R.make_newtype, "N", int, [1], None),
    "dataclass marker non-str": Call(R.get_dataclass_field_type_sentinel, None),
}


# Inputs that Python itself accepts: they load, harmlessly.
ACCEPTED = {"make_skeleton_enum bad members", "make_paramspec non-str", "make_typevartuple non-str",
            "make_newtype bad module"}
if sys.version_info >= (3, 12):
    # 3.12's typing makes these in C, which refuses a name that is not a str.
    ACCEPTED -= {"make_paramspec non-str", "make_typevartuple non-str"}


def test_crafted_calls_of_the_reconstructors_raise(tmp_path):
    inputs = [flightpickle.dumps(crafted, protocol=5) for crafted in CRAFTED.values()]
    results = outcomes(inputs, tmp_path)
    named = dict(zip(CRAFTED, (results.get(index) for index in range(len(inputs)))))
    assert {name for name, outcome in named.items() if outcome == "loaded"} == ACCEPTED
    for name, outcome in named.items():
        assert outcome == "loaded" or outcome.endswith("Error"), (name, outcome)


@pytest.mark.parametrize("cut", [0, 1, 2, 10])
def test_truncated_input_raises_what_pickle_raises(cut):
    data = flightpickle.dumps(lambda x: x)[:cut]
    with pytest.raises((pickle.UnpicklingError, EOFError)):
        flightpickle.loads(data)
