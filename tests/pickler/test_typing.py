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


FORMS_SCRIPT = """
import sys, typing, typing_extensions as te, cloudpickle, flightpickle
T = typing.TypeVar("T")
TE = te.TypeVar("TE", bound=int)
class Model:
    pass
class Box(typing.Generic[T]):
    pass
class BoxE(te.Generic[TE]):
    pass
class Shape(te.Protocol):
    def area(self) -> float: ...
class Row(te.TypedDict):
    name: str
    size: te.NotRequired[int]
forms = (typing.Literal["a", 1], typing.Final[Model], typing.ClassVar[typing.List[Model]],
         Box[int], Box[T], Box[Model], te.Literal["b"], te.Final[Model], te.Annotated[Model, "meta"],
         BoxE[TE], Shape, Row, typing.Optional[Box[Model]])
lib = flightpickle if sys.argv[1] == "flightpickle" else cloudpickle
sys.stdout.buffer.write(lib.dumps(forms, protocol=int(sys.argv[2])))
"""

FORMS_CHECK = """
import typing
lit, final, classvar, box_int, box_t, box_model, te_lit, te_final, annotated, boxe, Shape, Row, opt = obj
Model = final.__args__[0]
Box = typing.get_origin(box_int)
result = (lit == typing.Literal["a", 1], typing.get_origin(final) is typing.Final, Model.__name__,
          typing.get_args(classvar)[0] == typing.List[Model], typing.get_args(box_int) == (int,),
          Box is typing.get_origin(box_t), str(typing.get_args(box_t)[0]), typing.get_args(box_model)[0] is Model,
          te_lit.__args__, te_final.__args__[0] is Model, annotated.__metadata__, annotated.__origin__ is Model,
          boxe.__args__[0].__bound__ is int, typing.get_origin(boxe).__parameters__ == boxe.__args__,
          Shape._is_protocol, sorted(Row.__required_keys__), sorted(Row.__optional_keys__),
          typing.get_args(opt)[0].__args__[0] is Model)
"""


def test_typing_forms_over_dynamic_classes_load_fresh_as_with_cloudpickle(run_python, load_fresh, protocol):
    script = FORMS_SCRIPT.replace("sys.argv[1]", "{lib!r}").replace("int(sys.argv[2])", str(protocol))
    ours = load_fresh(run_python(script.replace("{lib!r}", "'flightpickle'")), FORMS_CHECK)
    theirs = load_fresh(run_python(script.replace("{lib!r}", "'cloudpickle'")), FORMS_CHECK)
    assert ours == theirs
    assert ours == (True, True, "Model", True, True, True, "~T", True, ("b",), True, ("meta",), True,
                    True, True, True, ["name"], ["size"], True)


EXTENSIONS_SCRIPT = """
import sys, typing_extensions as te, flightpickle
P = te.ParamSpec("P")
Ts = te.TypeVarTuple("Ts")
UserId = te.NewType("UserId", int)
def typed(f: te.Callable[P, int], *args: te.Unpack[Ts]) -> UserId:
    return UserId(1)
sys.stdout.buffer.write(flightpickle.dumps((P, Ts, UserId, typed), protocol=int(sys.argv[1])))
"""


def test_typing_extensions_variables_travel_by_value(run_python, load_fresh, protocol):
    # cloudpickle 3.1 pickles these as __main__ globals, which no other process has.
    data = run_python(EXTENSIONS_SCRIPT.replace("int(sys.argv[1])", str(protocol)))
    check = """
    P, Ts, UserId, typed = obj
    result = (P.__name__, Ts.__name__, UserId(3), UserId.__supertype__ is int,
              typed.__annotations__['return'] is UserId, typed(None) == 1)
    """
    assert load_fresh(data, check) == ("P", "Ts", 3, True, True, True)
