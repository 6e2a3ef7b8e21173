"""A function's code fields in native pickles: the six leading counts packed
in one bytes object, the four name tuples as one blob (each tuple its
count, then each name its UTF-8 length in one byte and its UTF-8), and the
globals of the state named by their index in `co_names` where they are one. The loader must make the very code
object and globals that were pickled, refuse malformed fields with a clear
error, and still load the shape of the release before.
"""

import math
import pathlib
import pickle
import pickletools
import sys
import threading
import types

import pytest

import flightpickle
from flightpickle import _reconstruct
from support import leb128, names_blob

OLD_PICKLES = pathlib.Path(__file__).parent / "old_pickles"
RUNS_OLD_PICKLES = pytest.mark.skipif(
    sys.version_info[:2] != (3, 11), reason="the stored pickles hold CPython 3.11 bytecode")
MARK = -(100 * sys.version_info[0] + sys.version_info[1])
OFFSET = 7


def packed(*counts):
    return b"".join(leb128(count) for count in counts)


def native_fields(code):
    """The fields this release writes for `code` (behind the mark)."""
    counts = packed(code.co_argcount, code.co_posonlyargcount, code.co_kwonlyargcount,
                    code.co_nlocals, code.co_stacksize, code.co_flags)
    return [MARK, counts, code.co_code, code.co_consts, names_blob(code), None, code.co_filename,
            code.co_name, code.co_qualname, code.co_firstlineno, code.co_linetable,
            code.co_exceptiontable, None, None]


NAMES_AT = 4  # the blob's place in `native_fields`


def state(used=(), modules=None, name="f"):
    """A `FunctionState` tuple (see `reconstruct/functions.rs`)."""
    return (name, name, None, None, "m", None, None, tuple(used), None, (), None, None, modules)


# Defined in a module that cannot be imported, so that they travel by value.
SUBJECTS = '''
import math
OFFSET = 7

def hypotenuse(a, b):
    return round(math.sqrt(a * a + b * b), 2) + OFFSET

def digits(n):
    return 1 if n < 10 else digits(n // 10) + 1
'''
SUBJECTS_MODULE = "name_blob_subjects"
subjects = {"__name__": SUBJECTS_MODULE}
exec(SUBJECTS, subjects)
hypotenuse = subjects["hypotenuse"]
digits = subjects["digits"]


def ops_of(data):
    return [(op.name, arg) for op, arg, _ in pickletools.genops(data)]


@pytest.mark.skipif(sys.version_info < (3, 11), reason="3.11's code fields")
def test_the_names_travel_as_blobs_and_load_as_interned_strs():
    data = flightpickle.dumps(hypotenuse)
    args = {arg for name, arg in ops_of(data) if name == "SHORT_BINBYTES"}
    assert names_blob(hypotenuse.__code__) in args
    # No name of the code travels as a string of its own.
    strings = {arg for name, arg in ops_of(data) if name == "SHORT_BINUNICODE"}
    assert not strings & {"sqrt", "OFFSET", "round", "a", "b"}
    loaded = pickle.loads(data)
    assert loaded(3, 4) == 12.0
    assert loaded.__code__ == hypotenuse.__code__
    for name in loaded.__code__.co_names + loaded.__code__.co_varnames:
        assert sys.intern(name) is name


def test_the_counts_travel_packed():
    data = flightpickle.dumps(hypotenuse)
    code = hypotenuse.__code__
    expected = packed(code.co_argcount, code.co_posonlyargcount, code.co_kwonlyargcount,
                      code.co_nlocals, code.co_stacksize, code.co_flags)
    # They lead the code's body (see test_code_body.py).
    ops = ops_of(data)
    name, body = ops[ops.index(("BININT", MARK)) + 1]
    assert name == "SHORT_BINBYTES" and body.startswith(expected)
    assert pickle.loads(data).__code__.co_flags == code.co_flags


def test_globals_are_named_by_their_index_in_co_names():
    data = flightpickle.dumps(hypotenuse)
    names = hypotenuse.__code__.co_names
    ints = [arg for name, arg in ops_of(data) if name == "BININT1"]
    # OFFSET (a value) and math (a module by name) are named by index.
    assert names.index("OFFSET") in ints and names.index("math") in ints
    loaded = pickle.loads(data)
    assert loaded.__globals__["OFFSET"] == OFFSET
    assert loaded.__globals__["math"] is math


def test_a_function_bound_to_its_own_global_is_named_by_index():
    loaded = pickle.loads(flightpickle.dumps(digits))
    assert loaded(12345) == 5
    assert loaded.__globals__["digits"] is loaded


def test_a_global_only_a_nested_function_uses_keeps_its_name():
    def outer():
        return lambda: OFFSET

    assert "OFFSET" not in outer.__code__.co_names
    data = flightpickle.dumps(outer)
    assert ("SHORT_BINUNICODE", "OFFSET") in ops_of(data)
    assert pickle.loads(data)()() == OFFSET


def test_names_that_are_not_ascii_round_trip():
    namespace = {}
    exec("café = 2\ndef größe(n):\n    return n * café\n", namespace)
    loaded = pickle.loads(flightpickle.dumps(namespace["größe"]))
    assert loaded(3) == 6
    assert loaded.__code__.co_names == ("café",)


def test_names_that_cannot_be_a_blob_keep_their_tuple():
    long_name = "n" * 300  # more than a length byte holds
    surrogate = "\ud800x"  # no UTF-8
    for odd in (long_name, surrogate):
        code = hypotenuse.__code__.replace(co_names=hypotenuse.__code__.co_names + (odd,))
        func = types.FunctionType(code, {"__name__": SUBJECTS_MODULE})
        loaded = pickle.loads(flightpickle.dumps(func))
        assert loaded.__code__.co_names == code.co_names


def test_code_objects_with_more_names_than_the_table_holds_load_exactly():
    names = tuple(f"name_{i}" for i in range(3000))
    code = hypotenuse.__code__.replace(co_names=hypotenuse.__code__.co_names + names)
    func = types.FunctionType(code, {"__name__": SUBJECTS_MODULE})
    data = flightpickle.dumps(func)
    for _ in range(2):
        assert pickle.loads(data).__code__.co_names == code.co_names


def test_other_threads_load_names_with_their_own_table():
    data = flightpickle.dumps(hypotenuse)
    results = []
    threads = [threading.Thread(target=lambda: results.append(pickle.loads(data)(3, 4))) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [12.0] * 4


@pytest.mark.skipif(sys.version_info < (3, 11), reason="3.11's code fields")
def test_hand_written_fields_make_the_same_code():
    fields = native_fields(hypotenuse.__code__)
    func = _reconstruct.new_function(tuple(fields), {"__name__": "m"})
    assert func.__code__ == hypotenuse.__code__


@pytest.mark.skipif(sys.version_info < (3, 11), reason="3.11's code fields")
@pytest.mark.parametrize("field, bad", [
    (NAMES_AT, b"\x01\x05abc\x00\x00\x00"),  # a length past the end
    (NAMES_AT, b"\x01\x02\xff\xfe\x00\x00\x00"),  # not UTF-8
    (NAMES_AT, b"\x00\x00\x00\x00\x00"),  # a byte after the last tuple
    (NAMES_AT, b"\x00\x00\x00"),  # three tuples
    (NAMES_AT, b"\x7f\x01a\x00\x00\x00"),  # more names than bytes
    (NAMES_AT, b"\x80"),  # a count cut short
    (NAMES_AT, b"\xff\xff\xff\xff\xff\x01"),  # a count past 35 bits
    (NAMES_AT + 1, ("a", "b")),  # a tuple beside the blob
    (1, b"\x01\x00\x00\x01\x02"),  # five counts
    (1, b"\x01\x00\x00\x01\x02\x03\x00"),  # one too many
    (1, b"\x01\x00\x00\x01\x02\xff\xff\xff\xff\x7f"),  # past 32 bits
])
def test_malformed_fields_are_refused_with_a_clear_error(field, bad):
    fields = native_fields(hypotenuse.__code__)
    fields[field] = bad
    with pytest.raises(ValueError, match="malformed"):
        _reconstruct.new_function(tuple(fields), {"__name__": "m"})


@pytest.mark.skipif(sys.version_info < (3, 11), reason="3.11's code fields")
def test_a_global_index_past_the_names_is_refused():
    fields = native_fields(hypotenuse.__code__)
    names = len(hypotenuse.__code__.co_names)
    with pytest.raises(ValueError, match=f"index {names} into its code's names, of which there are {names}"):
        _reconstruct.new_function(tuple(fields), {"__name__": "m"}, state(used=(names, 1)))
    with pytest.raises(ValueError, match="index -1"):
        _reconstruct.new_function(tuple(fields), {"__name__": "m"}, state(used=(-1, 1)))


@RUNS_OLD_PICKLES
@pytest.mark.parametrize("name, check, expected", [
    ("recursive_name_tuples", "result = (obj(12345), obj.__globals__['digits'] is obj)", (5, True)),
    ("globals_name_tuples", "result = (obj(3, 4), obj.__globals__['math'].__name__, obj.__globals__['OFFSET'])",
     (8.0, "math", 3)),
    ("closure_name_tuples", "result = obj([1, 2])", [5, 7]),
])
def test_pickles_with_name_tuples_still_load(load_fresh, name, check, expected):
    # Written while the counts were ints, the names tuples of strs and the
    # globals named by their names (see old_pickles/make_name_tuples.py).
    data = (OLD_PICKLES / f"{name}.pkl").read_bytes()
    ops = ops_of(data)
    after_mark = ops[ops.index(("BININT", MARK)) + 1]
    assert after_mark == ("BININT1", 1) or after_mark == ("BININT1", 2)  # the argument count, an int
    assert load_fresh(data, check) == expected


@pytest.mark.skipif(sys.version_info < (3, 11), reason="inline caches came with 3.11")
def test_bytecode_whose_caches_run_past_its_end_is_refused():
    # 3.12 writes each instruction's first cache entry as it makes the code
    # object, 3.11 all of them as `co_code` copies the bytecode out: a last
    # instruction with caches would have either write past the end.
    import opcode

    code = hypotenuse.__code__
    cached = next(number for number in opcode.opmap.values() if opcode._inline_cache_entries[number])
    fields = native_fields(code)
    fields[2] = code.co_code[:-2] + bytes([cached, 0])
    with pytest.raises(ValueError, match="caches run past its end"):
        _reconstruct.new_function(tuple(fields), {"__name__": "m"})
    # So is the field of another type, which goes to `CodeType(...)`.
    fields[3] = list(fields[3])
    with pytest.raises(ValueError, match="caches run past its end"):
        _reconstruct.new_function(tuple(fields), {"__name__": "m"})


@pytest.mark.skipif(sys.version_info < (3, 12), reason="instrumented opcodes came with 3.12")
def test_bytecode_with_an_instrumented_opcode_is_refused():
    import opcode

    code = hypotenuse.__code__
    fields = native_fields(code)
    fields[2] = code.co_code[:-2] + bytes([opcode.MIN_INSTRUMENTED_OPCODE, 0])
    with pytest.raises(ValueError, match="not one compiled code holds"):
        _reconstruct.new_function(tuple(fields), {"__name__": "m"})
