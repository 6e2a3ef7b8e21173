"""How `new_function` makes a code object from its fields.

On 3.11 fields of the exact types the compiler makes go straight to the C
constructor; anything else goes through `types.CodeType(...)`, which
converts it or refuses it with its own error. Either way the code object
must be the one that was pickled, and `code.__new__` must be audited.
"""

import pickle
import sys

import pytest

import flightpickle
from flightpickle import _reconstruct

CODE_FIELDS = [
    "co_argcount", "co_posonlyargcount", "co_kwonlyargcount", "co_nlocals", "co_stacksize", "co_flags",
    "co_code", "co_consts", "co_names", "co_varnames", "co_filename", "co_name", "co_qualname",
    "co_firstlineno", "co_linetable", "co_exceptiontable", "co_freevars", "co_cellvars",
]
FIELD_NAMES = CODE_FIELDS if sys.version_info >= (3, 11) else [
    name for name in CODE_FIELDS if name not in ("co_qualname", "co_exceptiontable")]


def code_fields(code):
    """The arguments of `types.CodeType(...)` for this Python."""
    return [getattr(code, name) for name in FIELD_NAMES]


def position(name):
    return FIELD_NAMES.index(name)


def made_code(fields):
    return _reconstruct.new_function(tuple(fields), {"__name__": "m"}).__code__


def an_argument_in_a_cell(a, b=2):
    def inner():
        return a

    return inner, b


def every_kind_of_argument(a, /, b, *args, c, d=4, **kwargs):
    return a, b, args, c, d, kwargs


def a_generator(n):
    try:
        yield from range(n)
    except ValueError:
        yield -1
    finally:
        pass


async def a_coroutine(x):
    return [y async for y in x]


def nested_code():
    class Inner:
        def method(self):
            return __class__

    return Inner, lambda: {1, 2}, [i * 2 for i in range(3)]


def constants():
    return (None, True, ..., 1.5, 2j, b"raw", "text", 10**40, frozenset({"a", "b"}), ("t", 1))


def free_variables():
    first, second = 1, 2

    def inner(x):
        return first + second + x

    return inner


CODES = [
    (lambda x: x * x).__code__,
    an_argument_in_a_cell.__code__,
    an_argument_in_a_cell(1)[0].__code__,
    every_kind_of_argument.__code__,
    a_generator.__code__,
    a_coroutine.__code__,
    nested_code.__code__,
    constants.__code__,
    free_variables().__code__,
]


@pytest.mark.parametrize("code", CODES, ids=lambda code: code.co_name)
def test_a_code_object_is_made_with_every_field_it_was_pickled_with(code):
    made = made_code(code_fields(code))
    assert made == code
    for name in FIELD_NAMES + ["co_nlocals", "co_lines"]:
        if name == "co_lines":
            assert list(made.co_lines()) == list(code.co_lines())
        else:
            assert getattr(made, name) == getattr(code, name), name


@pytest.mark.parametrize("code", CODES, ids=lambda code: code.co_name)
def test_a_made_function_has_one_empty_cell_per_free_variable(code):
    func = _reconstruct.new_function(tuple(code_fields(code)), {"__name__": "m"})
    closure = func.__closure__ or ()
    assert len(closure) == len(code.co_freevars)
    for cell in closure:
        with pytest.raises(ValueError):
            cell.cell_contents


def test_functions_of_every_kind_round_trip():
    inner, b = an_argument_in_a_cell(5)
    assert pickle.loads(flightpickle.dumps(inner))() == 5
    assert pickle.loads(flightpickle.dumps(every_kind_of_argument))(1, 2, 3, c=4, e=5) == (1, 2, (3,), 4, 4, {"e": 5})
    assert list(pickle.loads(flightpickle.dumps(a_generator))(3)) == [0, 1, 2]
    loaded = pickle.loads(flightpickle.dumps(nested_code))()
    assert loaded[0]().method() is loaded[0]
    assert loaded[1]() == {1, 2}
    assert loaded[2] == [0, 2, 4]
    assert pickle.loads(flightpickle.dumps(constants))() == constants()
    assert pickle.loads(flightpickle.dumps(free_variables()))(3) == 6


class Count(int):
    pass


class Name(str):
    pass


def fields_with(name, value, code=CODES[1]):
    fields = code_fields(code)
    fields[position(name)] = value
    return fields


@pytest.mark.parametrize("fields", [
    fields_with("co_argcount", Count(2)),
    fields_with("co_flags", Count(CODES[1].co_flags)),
    fields_with("co_varnames", (Name("a"), "b", "inner")),
    fields_with("co_cellvars", (Name("a"),)),
    fields_with("co_name", Name("an_argument_in_a_cell")),
], ids=["int-subclass-count", "int-subclass-flags", "str-subclass-varname", "str-subclass-cellvar",
        "str-subclass-name"])
def test_fields_of_other_types_go_through_code_type(fields):
    made = made_code(fields)
    assert made == CODES[1]
    assert made == type(CODES[1])(*fields)
    assert all(type(name) is str for name in made.co_varnames + made.co_cellvars)


@pytest.mark.parametrize("fields, error, message", [
    (fields_with("co_argcount", -1), ValueError, "argcount must not be negative"),
    (fields_with("co_posonlyargcount", 5), (ValueError, SystemError), None),
    (fields_with("co_nlocals", -1), ValueError, "nlocals must not be negative"),
    (fields_with("co_stacksize", 2**40), OverflowError, None),
    (fields_with("co_names", ("ok", 5)), TypeError, "name tuples must contain only strings"),
    (fields_with("co_varnames", ["a", "b", "inner"]), TypeError, "tuple"),
    (fields_with("co_code", "not bytes"), TypeError, "bytes"),
    (fields_with("co_consts", [None]), TypeError, "tuple"),
    (fields_with("co_filename", b"file"), TypeError, "str"),
    (fields_with("co_nlocals", 7), ValueError, "co_nlocals"),
], ids=["negative-argcount", "posonly-over-argcount", "negative-nlocals", "stacksize-overflow",
        "non-str-name", "list-of-varnames", "str-code", "list-of-consts", "bytes-filename", "wrong-nlocals"])
def test_bad_fields_are_refused_as_code_type_refuses_them(fields, error, message):
    with pytest.raises(error, match=message):
        made_code(fields)
    with pytest.raises(error, match=message):
        type(CODES[1])(*fields)


def test_making_a_code_object_is_audited(run_python):
    payload = flightpickle.dumps(free_variables())
    script = """
        import pickle, sys
        events = []
        sys.addaudithook(lambda event, args: events.append(args) if event == "code.__new__" else None)
        func = pickle.loads(sys.stdin.buffer.read())
        code, filename, name, *counts = events[-1]
        print(len(events), code == func.__code__.co_code, filename, name, counts)
    """
    out = run_python(script, stdin=payload).decode().split(maxsplit=4)
    code = free_variables().__code__
    assert out[:4] == ["1", "True", "<test_code_constructor.py>", "inner"]
    assert out[4].strip() == str([code.co_argcount, code.co_posonlyargcount, code.co_kwonlyargcount,
                                  code.co_nlocals, code.co_stacksize, code.co_flags])
