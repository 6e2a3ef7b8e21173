"""Typing constructs defined dynamically travel by value and keep their
identity across loads; importable ones travel by reference. ParamSpec,
TypeVarTuple and NewType go beyond cloudpickle 3.1, which pickles them as
`__main__.<name>` globals that no other process can load."""

import pickle
import sys
import typing

import pytest

import flightpickle

SCRIPT = """
import sys, typing, flightpickle
T = typing.TypeVar("T", int, str)
P = typing.ParamSpec("P", bound=None)
UserId = typing.NewType("UserId", int)
Ts = getattr(typing, "TypeVarTuple", lambda name: None)("Ts")
def typed(x: T, uid: UserId) -> T:
    return x
sys.stdout.buffer.write(flightpickle.dumps((T, P, UserId, Ts, typed, (T, P, UserId, Ts)), protocol=5))
"""


def test_dynamic_typing_variables_load_in_a_fresh_interpreter(run_python, load_fresh):
    data = run_python(SCRIPT)
    check = """
    T, P, UserId, Ts, typed, again = obj
    result = (T.__constraints__ == (int, str), type(P).__name__, P.__name__, UserId(5),
              UserId.__supertype__ is int, UserId.__module__, typed.__annotations__['uid'] is UserId,
              again[0] is T and again[1] is P and again[2] is UserId and again[3] is Ts,
              None if Ts is None else Ts.__name__)
    """
    expected = (True, "ParamSpec", "P", 5, True, "__main__", True, True,
                "Ts" if sys.version_info >= (3, 11) else None)
    assert load_fresh(data, check) == expected


def test_typing_variables_are_tracked_across_loads():
    P = typing.ParamSpec("P")
    N = typing.NewType("N", str)
    data = flightpickle.dumps((P, N))
    first, second = pickle.loads(data), pickle.loads(data)
    assert first[0] is second[0] is P and first[1] is second[1] is N


def test_importable_typing_objects_travel_by_reference():
    assert pickle.loads(flightpickle.dumps(typing.AnyStr)) is typing.AnyStr
    assert b"make_typevar" not in flightpickle.dumps(typing.AnyStr)


@pytest.mark.parametrize("expr", ["typing.Literal['a', 1]", "typing.Final[int]",
                                  "typing.ClassVar[list]", "typing.Optional[typing.List[int]]",
                                  "int | str"])
def test_typing_forms_round_trip(expr, protocol):
    form = eval(expr)
    assert pickle.loads(flightpickle.dumps(form, protocol=protocol)) == form
