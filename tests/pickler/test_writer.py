"""The native writer behind module-level ``dumps`` and ``dump``.

It must write, for what plain pickle handles, the C pickler's very bytes;
for functions and classes, pickles that mean what ``flightpickle.Pickler``'s
mean; and it must hand over to ``Pickler`` where it does not apply.
"""

import collections
import enum
import fractions
import io
import pickle
import sys
import threading

import pytest

import flightpickle
from flightpickle import _native


def _nested(levels, wrap):
    value = None
    for _ in range(levels):
        value = wrap(value)
    return value


def _plain_values():
    shared = "shared-string"
    looped_list = []
    looped_list.append(looped_list)
    looped_dict = {}
    looped_dict["self"] = looped_dict
    tuple_through_list = ([],)
    tuple_through_list[0].append(tuple_through_list)
    return [
        None, True, False, 0, 255, 256, 65535, 65536, -1, 2**31 - 1, -(2**31), 2**31, -(2**31) - 1,
        2**63 - 1, -(2**63), 2**64, -(2**200), 10**400, 1.5, -0.0, float("inf"),
        "", "é", "x" * 300, "\ud800 lone surrogate", b"", b"ab", b"x" * 300, bytearray(b"abc"), bytearray(),
        (), (1,), (1, 2), (1, 2, 3), (1, 2, 3, 4), [], [1], list(range(2500)), {}, {1: 2},
        {i: str(i) for i in range(1000)}, {i: i for i in range(2001)},
        set(), {1, 2, 3}, set(range(1000)), frozenset(), frozenset({1, 2}),
        int, len, pickle.PickleBuffer, collections.OrderedDict.fromkeys("ab"), fractions.Fraction(1, 3),
        [fractions.Fraction(i, 7) for i in range(50)], complex(1, 2), Exception("boom"),
        [shared, shared, (shared,), {shared: shared}], looped_list, looped_dict, tuple_through_list,
        # Beyond one 64 KiB frame, and payloads that bypass frames.
        list(range(100_000)), {str(i): str(i) for i in range(30_000)}, "y" * 70_000, b"z" * 70_000,
    ]


@pytest.mark.parametrize("proto", [2, 3, 4, 5])
def test_plain_data_is_the_c_picklers_bytes(proto):
    for value in _plain_values():
        assert _native.fast_dump(value, proto, None, None) == pickle.dumps(value, proto), repr(value)[:80]


def test_memo_keeps_sharing_and_cycles():
    inner = [1, 2]
    data = {"a": inner, "b": inner, "t": (inner, inner)}
    data["self"] = data
    loaded = pickle.loads(flightpickle.dumps(data))
    assert loaded["a"] is loaded["b"] is loaded["t"][0] is loaded["t"][1]
    assert loaded["self"] is loaded


class Pair:
    def __init__(self, left, right):
        self.left, self.right = left, right


class Color(enum.Enum):
    RED = 1


def test_objects_reduced_by_their_own_methods_round_trip(protocol):
    pair = Pair(None, fractions.Fraction(2, 3))
    pair.left = pair
    value = [pair, Color.RED, collections.defaultdict(list, a=[1]), collections.Counter("aab")]
    loaded = pickle.loads(flightpickle.dumps(value, protocol=protocol))
    assert loaded[0].left is loaded[0] and loaded[0].right == fractions.Fraction(2, 3)
    assert loaded[1:] == value[1:]


def test_functions_and_classes_mean_what_pickler_writes(protocol, load_fresh):
    offset = 10

    def scale(x, *, by=2):
        return (x + offset) * by

    class Local:
        factor = 3

        def triple(self, x):
            return x * self.factor

    payload = flightpickle.dumps((scale, Local, lambda: scale(1)), protocol=protocol)
    checks = "f, cls, thunk = obj\nresult = (f(1), f(1, by=3), cls().triple(2), cls.__name__, thunk())"
    assert load_fresh(payload, checks) == (22, 33, 6, "Local", 22)


def test_a_recursive_closure_loads_with_its_cycle(load_fresh):
    def countdown(n):
        return 0 if n == 0 else countdown(n - 1) + 1

    assert load_fresh(flightpickle.dumps(countdown), "result = obj(5)") == 5


def test_function_pickles_are_no_larger_than_the_picklers():
    def helper(x):
        return x + 1

    def use(values):
        return [helper(v) for v in values]

    with io.BytesIO() as file:
        flightpickle.Pickler(file).dump(use)
        through_pickler = file.getvalue()
    assert len(flightpickle.dumps(use)) <= len(through_pickler)


def test_names_are_memoized_by_text_in_function_state():
    def func():
        return 1

    # Renamed, the function's name and qualname travel in its state (the
    # code's own travel in its body), as two str objects of the same text:
    # written by text, the text is written once.
    func.__name__ = "renamed"
    func.__qualname__ = "".join(["rena", "med"])
    assert func.__qualname__ is not func.__name__
    payload = flightpickle.dumps(func)
    assert payload.count(b"\x8c\x07renamed") == 1
    loaded = pickle.loads(payload)
    assert (loaded.__name__, loaded.__qualname__) == ("renamed", "renamed")


@pytest.mark.parametrize("readonly", [True, False])
def test_buffers_go_out_of_band_when_the_callback_says_so(readonly):
    data = bytes(range(256)) * 10 if readonly else bytearray(range(256)) * 10
    buffer = pickle.PickleBuffer(data)
    handed = []
    payload = flightpickle.dumps(buffer, protocol=5, buffer_callback=handed.append)
    assert payload == pickle.dumps(buffer, protocol=5, buffer_callback=[].append)
    assert len(handed) == 1 and bytes(handed[0].raw()) == bytes(data)
    loaded = pickle.loads(payload, buffers=handed)
    assert bytes(loaded) == bytes(data)


def test_buffers_stay_in_band_when_the_callback_returns_true():
    buffer = pickle.PickleBuffer(bytearray(b"payload"))
    payload = flightpickle.dumps(buffer, protocol=5, buffer_callback=lambda b: True)
    assert payload == pickle.dumps(buffer, protocol=5)
    assert pickle.loads(payload) == bytearray(b"payload")


def test_dump_streams_large_payloads_into_the_file():
    value = {"big": b"x" * 200_000, "text": "y" * 100_000, "many": list(range(50_000))}
    writes = []

    class Recorder(io.BytesIO):
        def write(self, data):
            writes.append(len(data))
            return super().write(data)

    with Recorder() as file:
        flightpickle.dump(value, file, protocol=5)
        assert file.getvalue() == flightpickle.dumps(value, protocol=5)
    assert len(writes) > 1  # not one buffered write at the end
    assert 200_000 in writes  # the bytes payload straight from the object


def test_protocols_below_two_go_through_pickler(protocol):
    for proto in (0, 1):
        assert pickle.loads(flightpickle.dumps({"a": (1, 2.5)}, protocol=proto)) == {"a": (1, 2.5)}
    with pytest.raises(ValueError):
        flightpickle.dumps(1, protocol=6)


def test_a_changed_pickler_class_is_honoured(monkeypatch):
    calls = []

    def persistent_id(self, obj):
        calls.append(obj)
        return None

    flightpickle.dumps([7])  # the writer has seen the class as it was
    monkeypatch.setattr(flightpickle.Pickler, "persistent_id", persistent_id, raising=False)
    assert pickle.loads(flightpickle.dumps([7])) == [7]
    assert calls == [[7], 7]


def test_a_pickler_class_changed_back_is_the_default_again(monkeypatch):
    class Marked:
        pass

    def mark(self, obj):
        return (str, ("marked",)) if isinstance(obj, Marked) else NotImplemented

    flightpickle.dumps(Marked())  # the writer has seen the class as it was
    monkeypatch.setattr(flightpickle.Pickler, "reducer_override", mark)
    assert pickle.loads(flightpickle.dumps(Marked())) == "marked"
    monkeypatch.undo()
    assert type(pickle.loads(flightpickle.dumps(Marked()))).__name__ == "Marked"


def test_table_reducers_added_to_pickler_are_used(monkeypatch):
    class Token:
        pass

    monkeypatch.setitem(flightpickle.Pickler.dispatch_table, Token, lambda token: (str, ("token",)))
    assert pickle.loads(flightpickle.dumps(Token())) == "token"


def test_errors_name_the_path_as_pickler_does():
    lock = threading.Lock()

    def uses_lock():
        return lock

    with pytest.raises(pickle.PicklingError) as failure:
        flightpickle.dumps({"udf": uses_lock})
    assert str(failure.value) == (
        "Could not pickle obj['udf'].__closure__[0].cell_contents: cannot pickle '_thread.lock' object"
    )


def test_excessive_nesting_fails_as_pickler_fails():
    with pytest.raises(pickle.PicklingError, match="excessively deep recursion"):
        flightpickle.dumps(_nested(100_000, lambda v: [v]))


# From 3.12 the C pickler's nesting is bounded by CPython's own C recursion
# limit (under 1,000 levels), which `sys.setrecursionlimit` does not raise.
C_PICKLER_FOLLOWS_RECURSION_LIMIT = sys.version_info < (3, 12)


def test_nesting_past_the_writers_depth_is_left_to_pickler():
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(20_000)
    try:
        deep = _nested(3000, lambda v: [v])
        with pytest.raises(_native.FastPathDeclined):
            _native.fast_dump(deep, 5, None, None)
        if C_PICKLER_FOLLOWS_RECURSION_LIMIT:
            assert flightpickle.dumps(deep) == pickle.dumps(deep, protocol=5)
        else:
            with pytest.raises(RecursionError):
                pickle.dumps(deep, protocol=5)
            with pytest.raises(pickle.PicklingError, match="excessively deep recursion"):
                flightpickle.dumps(deep)
    finally:
        sys.setrecursionlimit(limit)


def test_bad_reduce_values_are_refused_clearly():
    class Bad:
        def __reduce__(self):
            return (len,)

    with pytest.raises(pickle.PicklingError, match="2 through 6 elements"):
        flightpickle.dumps(Bad())

    class NotCallable:
        def __reduce__(self):
            return (1, ())

    with pytest.raises(pickle.PicklingError, match="must be callable"):
        flightpickle.dumps(NotCallable())


def test_a_global_that_is_not_itself_is_refused():
    def impostor():
        pass

    impostor.__module__ = "fractions"
    impostor.__qualname__ = "Fraction"
    impostor.__name__ = "Fraction"
    # By reference would name fractions.Fraction: the writer checks the
    # name leads back to the object, so it travels by value instead.
    loaded = pickle.loads(flightpickle.dumps(impostor))
    assert loaded is not fractions.Fraction and loaded() is None


def test_repeated_dumps_see_globals_that_changed_in_between(load_fresh):
    # The names a code object uses are cached per code object; their values
    # must still be read at each dump.
    namespace = {"RATE": 2}
    exec("def priced(x):\n    return x * RATE", namespace)
    first = flightpickle.dumps(namespace["priced"])
    namespace["RATE"] = 5
    second = flightpickle.dumps(namespace["priced"])
    assert load_fresh(first, "result = obj(3)") == 6
    assert load_fresh(second, "result = obj(3)") == 15


def test_a_global_added_after_the_first_dump_travels(load_fresh):
    namespace = {}
    exec("def late(x):\n    return helper(x) + 1", namespace)
    late = namespace["late"]
    with pytest.raises(NameError):
        pickle.loads(flightpickle.dumps(late))(1)
    namespace["helper"] = abs
    assert load_fresh(flightpickle.dumps(late), "result = obj(-4)") == 5


@pytest.mark.parametrize("dump", ["dumps", "dump"])
def test_a_lowered_default_protocol_is_obeyed(monkeypatch, dump):
    monkeypatch.setattr(flightpickle, "DEFAULT_PROTOCOL", 3)
    if dump == "dumps":
        data = flightpickle.dumps(lambda: 1)
    else:
        file = io.BytesIO()
        flightpickle.dump(lambda: 1, file)
        data = file.getvalue()
    assert data[:2] == b"\x80\x03"
    assert pickle.loads(data)() == 1


class Outer:
    class Inner:
        pass


class Searched:
    """A class whose ``__module__`` is None: pickle finds its module by a
    search of ``sys.modules``."""


Searched.__module__ = None


@pytest.mark.parametrize("proto", [2, 3, 4, 5])
def test_classes_by_reference_are_the_c_picklers_bytes(proto):
    import collections
    import dataclasses

    classes = [Pair, Outer, Outer.Inner, Searched, collections.UserDict, collections.OrderedDict,
               dataclasses.Field, fractions.Fraction]
    for cls in classes:
        assert _native.fast_dump(cls, proto, None, None) == pickle.dumps(cls, proto), cls
    assert _native.fast_dump(classes * 2, proto, None, None) == pickle.dumps(classes * 2, proto)


@pytest.mark.parametrize("proto", [2, 3, 4, 5])
def test_builtin_functions_and_methods_are_the_c_picklers_bytes(proto):
    """Reduced without calling ``__reduce_ex__``: a global when bound to a
    module or nothing, ``getattr(owner, name)`` otherwise."""
    owner = [1]
    methods = [len, sys.getrecursionlimit, object.__new__, dict.fromkeys, "text".upper, owner.append,
               (1.5).hex, int.from_bytes, enum.Enum.__dir__]
    for method in methods:
        assert _native.fast_dump(method, proto, None, None) == pickle.dumps(method, proto), method
    assert _native.fast_dump(methods * 2, proto, None, None) == pickle.dumps(methods * 2, proto)


def test_an_enum_by_value_round_trips_with_its_member_constructor(load_fresh):
    class Local(enum.Enum):
        RED = 1
        GREEN = 2

    assert Local._new_member_ is object.__new__
    data = flightpickle.dumps(Local)
    check = "result = ([(m.name, m.value) for m in obj], obj._new_member_ is object.__new__)"
    assert load_fresh(data, check) == ([("RED", 1), ("GREEN", 2)], True)
