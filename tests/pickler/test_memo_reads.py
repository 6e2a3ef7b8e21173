"""Memo entries the native writer leaves out: the name of a reconstructor it
finds (the global itself is memoized and read back whole) and the key names
of a module's globals (sent beside the stand-in). Every memo read in a pickle
must still find what it reads, whatever is met twice."""

import json
import pickle
import pickletools
import sys

import pytest

import flightpickle

PROTOCOLS = [2, 3, 4, 5]


@pytest.fixture(autouse=True)
def this_module_by_value():
    """The functions and classes below travel by value, as `__main__`'s do."""
    flightpickle.register_pickle_by_value(sys.modules[__name__])
    yield
    flightpickle.unregister_pickle_by_value(sys.modules[__name__])


def memo_reads_are_written_first(data):
    """Whether every BINGET and LONG_BINGET reads an index written before it."""
    written = set()
    for op, arg, _ in pickletools.genops(data):
        if op.name == "MEMOIZE":
            written.add(len(written))
        elif op.name in ("BINPUT", "LONG_BINPUT", "PUT"):
            written.add(arg)
        elif op.name in ("BINGET", "LONG_BINGET", "GET") and arg not in written:
            return False
    return True


def reconstructor_names_memoized(data):
    ops = [(op.name, arg) for op, arg, _ in pickletools.genops(data)]
    return [arg for (name, arg), (following, _) in zip(ops, ops[1:])
            if name == "SHORT_BINUNICODE" and arg.startswith("_new_") and following == "MEMOIZE"]


def fibonacci(n):
    return n if n < 2 else fibonacci(n - 1) + fibonacci(n - 2)


def outer(base):
    def inner(x):
        return x + base

    def twice(x):
        return inner(inner(x))

    return twice


def uses_a_global_twice(value):
    return json.dumps(value) + json.dumps([value])


def named_like_the_reconstructor(_new_function="_new_function"):
    return _new_function


class Account:
    kind = "_new_function"

    def __init__(self, owner):
        self.owner = owner

    def rename(self):
        return Account(self.owner.upper())

    @staticmethod
    def make():
        return fibonacci(5)


def test_the_reconstructors_name_has_no_memo_entry():
    data = flightpickle.dumps(lambda x: x + 1)
    assert b"_new_function" in data
    assert reconstructor_names_memoized(data) == []
    assert memo_reads_are_written_first(data)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_an_object_met_twice_is_read_back(protocol):
    shared = [1, 2]
    data = flightpickle.dumps([fibonacci, shared, fibonacci, shared, Account, Account], protocol=protocol)
    assert memo_reads_are_written_first(data)
    loaded = pickle.loads(data)
    assert loaded[0] is loaded[2] and loaded[1] is loaded[3] and loaded[4] is loaded[5]
    assert loaded[0](10) == 55


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_global_met_twice_is_read_back(protocol):
    data = flightpickle.dumps([uses_a_global_twice, json.dumps, uses_a_global_twice, json.dumps], protocol=protocol)
    assert memo_reads_are_written_first(data)
    func, dumps, again, dumps_again = pickle.loads(data)
    assert func is again and dumps is dumps_again is json.dumps
    assert func(1) == "1[1]"


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_reconstructors_name_met_as_a_value_is_written_again(protocol):
    values = ["_new_function", named_like_the_reconstructor, "_new_function", "flightpickle", Account]
    data = flightpickle.dumps(values, protocol=protocol)
    assert memo_reads_are_written_first(data)
    loaded = pickle.loads(data)
    assert loaded[0] == loaded[2] == "_new_function" and loaded[3] == "flightpickle"
    assert loaded[1]() == "_new_function"
    assert loaded[1].__code__.co_varnames == ("_new_function",)
    assert loaded[4].kind == "_new_function"


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_recursion_nesting_and_classes_load(protocol):
    data = flightpickle.dumps([outer(3), fibonacci, Account, Account.make], protocol=protocol)
    assert memo_reads_are_written_first(data)
    twice, fib, cls, make = pickle.loads(data)
    assert twice(1) == 7 and fib(10) == 55 and make() == 5
    assert cls("ann").rename().owner == "ANN"
    assert twice.__globals__ is fib.__globals__
    assert fib.__globals__["__name__"] == cls.rename.__globals__["__name__"] == __name__
