"""A native function pickle marks its code with the Python version that
wrote it, and a load on another version refuses it before a code object is
made: bytecode runs only on the version that compiled it, and calling it
elsewhere would crash the interpreter. The `cloudpickle` target keeps
`CodeType(...)`'s own arguments, as stock cloudpickle reads them."""

import pickle
import struct
import sys

import pytest

import flightpickle


def running_mark():
    major, minor = sys.version_info[:2]
    return b"J" + struct.pack("<i", -(100 * major + minor))


def local_function():
    """A function that is not importable, so it travels by value."""

    def scaled(x):
        return 3 * x

    return scaled


scaled = local_function()


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_the_native_shape_marks_its_code_and_loads_on_this_version(protocol):
    data = flightpickle.dumps(scaled, protocol=protocol)
    assert data.count(running_mark()) == 1
    assert pickle.loads(data)(2) == 6


@pytest.mark.parametrize("protocol", [2, 5])
def test_code_marked_by_another_version_is_refused_with_both_named(protocol):
    data = flightpickle.dumps(scaled, protocol=protocol)
    forged = data.replace(running_mark(), b"J" + struct.pack("<i", -399))
    this = "{}.{}".format(*sys.version_info[:2])
    with pytest.raises(pickle.UnpicklingError) as refused:
        pickle.loads(forged)
    message = str(refused.value)
    assert "code of local_function.<locals>.scaled of Python 3.99" in message
    assert f"(this is {this})" in message
    assert "load it with Python 3.99" in message


def test_every_function_of_a_class_is_marked():
    class Account:
        def deposit(self, amount):
            return amount

        @classmethod
        def empty(cls):
            return cls()

    data = flightpickle.dumps(Account)
    assert data.count(running_mark()) == 2
    assert pickle.loads(data)().deposit(4) == 4


def test_the_cloudpickle_target_is_not_marked():
    assert running_mark() not in flightpickle.dumps(scaled, target="cloudpickle")
