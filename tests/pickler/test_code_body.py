"""A function's code fields in native pickles, bundled: `(mark, body,
co_consts, names blob, co_filename)`, the body being the six counts and
`co_firstlineno` (unsigned LEB128 each), then `co_code`, `co_linetable`,
`co_name` and `co_qualname` (each its length, then its bytes, the names in
UTF-8) and `co_exceptiontable` (the rest). The loader must make the very
code object that was pickled, refuse a malformed body with a clear error,
and still load the marked fields of the release before (see
test_name_blobs.py).
"""

import pickle
import pickletools
import subprocess
import sys
import textwrap

import pytest

import flightpickle
from flightpickle import _reconstruct
from support import leb128, names_blob

pytestmark = pytest.mark.skipif(sys.version_info < (3, 11), reason="3.11's code fields")

MARK = -(100 * sys.version_info[0] + sys.version_info[1])
NAME_FIELDS = ("co_names", "co_varnames", "co_freevars", "co_cellvars")
COUNT_FIELDS = ("co_argcount", "co_posonlyargcount", "co_kwonlyargcount", "co_nlocals", "co_stacksize",
                "co_flags")

SUBJECTS = '''
import math

def hypotenuse(a, b):
    """The long side."""
    return round(math.sqrt(a * a + b * b), 2)

def guarded(values):
    try:
        return [1 / value for value in values]
    except ZeroDivisionError:
        return None
'''
subjects = {"__name__": "code_body_subjects"}
exec(SUBJECTS, subjects)
hypotenuse = subjects["hypotenuse"]
guarded = subjects["guarded"]


def sized(data):
    return leb128(len(data)) + data


def body_of(code, co_code=None):
    counts = b"".join(leb128(getattr(code, field)) for field in COUNT_FIELDS)
    co_code = code.co_code if co_code is None else co_code
    return (counts + leb128(code.co_firstlineno) + sized(co_code) + sized(code.co_linetable)
            + sized(code.co_name.encode()) + sized(code.co_qualname.encode()) + code.co_exceptiontable)


def bundled_fields(code):
    return [MARK, body_of(code), code.co_consts, names_blob(code), code.co_filename]


def made(fields):
    return _reconstruct.new_function(tuple(fields), {"__name__": "m"}).__code__


def ops_of(data):
    return [(op.name, arg) for op, arg, _ in pickletools.genops(data)]


def test_a_functions_code_travels_as_one_body():
    ops = ops_of(flightpickle.dumps(hypotenuse))
    after_mark = ops.index(("BININT", MARK)) + 1
    assert ops[after_mark] == ("SHORT_BINBYTES", body_of(hypotenuse.__code__))
    # Nothing else of the code travels as bytes but its name blob.
    others = {arg for name, arg in ops if name == "SHORT_BINBYTES"} - {body_of(hypotenuse.__code__)}
    assert others == {names_blob(hypotenuse.__code__)}
    # Its name travels only in the body: no str is decoded for it.
    assert ("SHORT_BINUNICODE", "hypotenuse") not in ops


@pytest.mark.parametrize("subject", [hypotenuse, guarded, lambda: 1], ids=["names", "exception table", "no names"])
def test_the_loaded_code_is_the_pickled_one(subject):
    code = subject.__code__
    for _ in range(3):  # made, noted, then found again
        loaded = pickle.loads(flightpickle.dumps(subject)).__code__
        assert loaded == code
        # (`co_filename` travels made independent of the writing machine.)
        for field in COUNT_FIELDS + NAME_FIELDS + ("co_firstlineno", "co_linetable", "co_exceptiontable",
                                                   "co_qualname"):
            assert getattr(loaded, field) == getattr(code, field), field


def test_hand_written_bundled_fields_make_the_same_code():
    for code in (hypotenuse.__code__, guarded.__code__):
        assert made(bundled_fields(code)) == code


def test_a_code_loaded_again_is_the_one_made_before():
    data = flightpickle.dumps(guarded)
    codes = [pickle.loads(data).__code__ for _ in range(3)]
    assert codes[1] is codes[2]
    assert pickle.loads(data)([1, 0]) is None


def cut_bodies():
    body = body_of(hypotenuse.__code__)
    code_length = len(hypotenuse.__code__.co_code)
    counts = b"".join(leb128(getattr(hypotenuse.__code__, field)) for field in COUNT_FIELDS)
    first_line = leb128(hypotenuse.__code__.co_firstlineno)
    return [
        pytest.param(body[:3], "a count is cut short", id="five counts"),
        pytest.param(counts, "its first line", id="no first line"),
        pytest.param(counts + b"\xff\xff\xff\xff\x7f", "its first line", id="first line past 32 bits"),
        pytest.param(counts + first_line + leb128(code_length + 1) + hypotenuse.__code__.co_code,
                     "a length runs past its end", id="code past its end"),
        pytest.param(counts + first_line, "a length is cut short", id="no code length"),
        pytest.param(body[:len(counts) + len(first_line) + len(leb128(code_length)) + code_length],
                     "a length is cut short",
                     id="no line table"),
        pytest.param(body[:body.index(b"hypotenuse") - 1], "a length is cut short", id="no name"),
        pytest.param(body[:body.index(b"hypotenuse") + 4], "a length runs past its end", id="name cut short"),
    ]


@pytest.mark.parametrize("body, message", cut_bodies())
def test_a_malformed_body_is_refused_with_a_clear_error(body, message):
    fields = bundled_fields(hypotenuse.__code__)
    fields[1] = body
    with pytest.raises(ValueError, match=f"body is malformed: {message}"):
        made(fields)


def test_a_body_whose_last_caches_run_past_its_end_is_refused():
    # 3.11 would write them past the end of the copy `co_code` makes, and
    # of the one a reuse's audit event names: the load refuses them first.
    # (No code object is made of them here, for the same reason.)
    import opcode

    code = hypotenuse.__code__
    cached = next(number for number in opcode.opmap.values() if opcode._inline_cache_entries[number])
    fields = bundled_fields(code)
    fields[1] = body_of(code, co_code=code.co_code[:-2] + bytes([cached, 0]))
    for _ in range(3):  # as made, then noted, then found
        with pytest.raises(ValueError, match="caches run past its end"):
            made(fields)


def test_names_that_are_not_a_blob_are_refused():
    fields = bundled_fields(hypotenuse.__code__)
    fields[3] = hypotenuse.__code__.co_names
    with pytest.raises(ValueError, match="bundled fields are malformed: its names are not a blob"):
        made(fields)


def test_a_found_code_is_audited_with_its_own_fields():
    # Audit hooks cannot be removed: a fresh interpreter of its own.
    script = textwrap.dedent(
        """
        import pickle, sys
        import flightpickle
        namespace = {"__name__": "__main__"}
        exec("def f(x, *, y):\\n    return x + y\\n", namespace)
        code = namespace["f"].__code__
        payload = flightpickle.dumps(namespace["f"])
        seen = []
        sys.addaudithook(lambda event, args: event == "code.__new__" and seen.append(args))
        first, second = pickle.loads(payload), pickle.loads(payload)
        third = pickle.loads(payload)
        assert third.__code__ is second.__code__
        expected = (code.co_code, code.co_filename, code.co_name, code.co_argcount,
                    code.co_posonlyargcount, code.co_kwonlyargcount, code.co_nlocals,
                    code.co_stacksize, code.co_flags)
        print(all(args == expected for args in seen), len(seen))
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "True 3"


def test_fields_the_constructor_would_not_take_go_to_code_type():
    # On 3.11 a bundled code is made by the C constructor from its parts;
    # a field of another type goes to `CodeType(...)`, which converts it
    # or refuses it with its own error.
    fields = bundled_fields(hypotenuse.__code__)
    fields[2] = list(hypotenuse.__code__.co_consts)
    with pytest.raises(TypeError, match="tuple"):
        made(fields)
