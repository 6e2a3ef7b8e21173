"""``flightpickle.Pickler(file).dump(obj)``: the native writer where it writes
what the C pickler would for that pickler, the C pickler everywhere else.

Whether a dump went native is seen from its bytes (a function by value is
written in the native writer's shape, which differs from the C pickler's)
or from a subclass's hooks being called; ``Pickler._dump(obj,
natively=False)`` is the C pickler's path, for comparison.
"""

import copyreg
import fractions
import io
import pickle
import sys

import pytest

import flightpickle

PROTOCOLS = [2, 3, 4, 5]


def _c_pickler_dumps(obj, protocol=5, pickler_class=flightpickle.Pickler, **options):
    with io.BytesIO() as file:
        pickler_class(file, protocol=protocol, **options)._dump(obj, natively=False)
        return file.getvalue()


def _pickler_dumps(obj, protocol=5, pickler_class=flightpickle.Pickler, **options):
    with io.BytesIO() as file:
        pickler_class(file, protocol=protocol, **options).dump(obj)
        return file.getvalue()


def _closure():
    offset = 3

    def add(x):
        return x + offset

    return add


def _plain_values():
    shared = [1, 2]
    return [
        None, 1, 2**70, "text", b"bytes", (1, "a"), [shared, shared], {"k": shared},
        {1, 2}, fractions.Fraction(1, 3), list(range(100_000)), b"z" * 70_000, int, len,
    ]


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_plain_data_is_the_c_picklers_bytes(protocol):
    for value in _plain_values():
        assert _pickler_dumps(value, protocol) == _c_pickler_dumps(value, protocol), repr(value)[:80]


@pytest.mark.parametrize("target", ["native", "cloudpickle", "pyspark"])
@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_functions_are_what_module_level_dumps_writes(protocol, target):
    func = _closure()
    assert _pickler_dumps(func, protocol, target=target) == flightpickle.dumps(func, protocol, target=target)
    assert pickle.loads(_pickler_dumps(func, protocol, target=target))(1) == 4


def test_a_function_dump_is_native():
    func = _closure()
    assert _pickler_dumps(func) == flightpickle.dumps(func)
    assert _pickler_dumps(func) != _c_pickler_dumps(func)


def test_out_of_band_buffers_reach_the_picklers_callback():
    data = bytearray(range(256)) * 300
    handed = []
    payload = _pickler_dumps(pickle.PickleBuffer(data), buffer_callback=handed.append)
    assert payload == pickle.dumps(pickle.PickleBuffer(data), protocol=5, buffer_callback=[].append)
    assert len(handed) == 1 and bytes(handed[0].raw()) == bytes(data)
    assert pickle.loads(payload, buffers=handed) == data


class OwnPersistentId(flightpickle.Pickler):
    def persistent_id(self, obj):
        return "ID" if obj == "replace me" else None


class OwnTable(flightpickle.Pickler):
    dispatch_table = copyreg.dispatch_table.copy()
    dispatch_table[fractions.Fraction] = lambda value: (str, ("from the table",))


class OwnReducerOverride(flightpickle.Pickler):
    def reducer_override(self, obj):
        if isinstance(obj, fractions.Fraction):
            return (str, ("overridden",))
        return super().reducer_override(obj)


def test_a_subclass_persistent_id_is_used():
    payload = _pickler_dumps(["replace me"], pickler_class=OwnPersistentId)
    assert payload == _c_pickler_dumps(["replace me"], pickler_class=OwnPersistentId)
    assert b"ID" in payload


def test_a_subclass_dispatch_table_is_used():
    assert pickle.loads(_pickler_dumps([fractions.Fraction(1, 2)], pickler_class=OwnTable)) == ["from the table"]


def test_a_subclass_reducer_override_is_used():
    func = _closure()
    payload = _pickler_dumps([fractions.Fraction(1, 2), func], pickler_class=OwnReducerOverride)
    assert payload == _c_pickler_dumps([fractions.Fraction(1, 2), func], pickler_class=OwnReducerOverride)
    assert pickle.loads(payload)[0] == "overridden"


def _dump_with(obj, prepare):
    with io.BytesIO() as file:
        pickler = flightpickle.Pickler(file, protocol=5)
        prepare(pickler)
        pickler.dump(obj)
        return file.getvalue()


def test_an_instance_reducer_override_is_used():
    def override(obj):
        return (str, ("instance",)) if isinstance(obj, fractions.Fraction) else NotImplemented

    payload = _dump_with([fractions.Fraction(1, 2)], lambda p: setattr(p, "reducer_override", override))
    assert pickle.loads(payload) == ["instance"]


def test_a_dispatch_table_in_the_c_picklers_slot_is_used():
    table = {fractions.Fraction: lambda value: (str, ("instance table",))}
    slot = pickle.Pickler.__dict__["dispatch_table"]
    payload = _dump_with([fractions.Fraction(1, 2)], lambda p: slot.__set__(p, table))
    assert pickle.loads(payload) == ["instance table"]


def test_a_dispatch_table_in_the_instance_dict_is_ignored_as_the_c_pickler_ignores_it():
    # Pickler.dispatch_table is a plain class attribute, so assigning to it
    # on an instance fills the instance dict, which the C pickler never reads.
    table = {fractions.Fraction: lambda value: (str, ("instance table",))}
    value = [fractions.Fraction(1, 2)]

    def c_pickler_dumps():
        with io.BytesIO() as file:
            pickler = flightpickle.Pickler(file, protocol=5)
            pickler.dispatch_table = table
            pickler._dump(value, natively=False)
            return file.getvalue()

    assert _dump_with(value, lambda p: setattr(p, "dispatch_table", table)) == c_pickler_dumps()


def test_an_instance_persistent_id_is_used():
    payload = _dump_with(["replace me"], lambda p: setattr(p, "persistent_id", lambda obj: obj == "replace me" or None))
    assert b"\x88" in payload and b"replace me" not in payload


def test_fast_mode_is_the_c_picklers():
    shared = [1]
    payload = _dump_with([shared, shared], lambda p: setattr(p, "fast", True))
    loaded = pickle.loads(payload)
    assert loaded == [[1], [1]] and loaded[0] is not loaded[1]


def _load_all(payload, count):
    unpickler = pickle.Unpickler(io.BytesIO(payload))
    return [unpickler.load() for _ in range(count)]


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_later_dumps_refer_to_what_earlier_ones_memoized(protocol):
    func = _closure()
    shared = {"list": [1, 2], "func": func}
    with io.BytesIO() as file:
        pickler = flightpickle.Pickler(file, protocol=protocol)
        pickler.dump(shared)
        pickler.dump([shared["list"], "after", func])
        pickler.dump(shared)
        first, second, third = _load_all(file.getvalue(), 3)
    assert second[0] is first["list"] and second[2] is first["func"]
    assert third is first and first["func"](1) == 4


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_repeated_dumps_of_plain_data_are_the_c_picklers_bytes(protocol):
    shared = [fractions.Fraction(1, 3), "text", (1, 2)]
    values = [shared, {"again": shared, "more": [3, 4]}, shared[1], shared]

    def dumped(natively):
        with io.BytesIO() as file:
            pickler = flightpickle.Pickler(file, protocol=protocol)
            for value in values:
                pickler._dump(value, natively=natively)
            return file.getvalue()

    assert dumped(True) == dumped(False)


def test_the_memo_reads_what_a_native_dump_memoized():
    shared = [1, 2]
    with io.BytesIO() as file:
        pickler = flightpickle.Pickler(file)
        pickler.dump([shared, shared])
        memo = pickler.memo.copy()
    assert {id(shared)} <= set(memo) and len(memo) == 2


def test_a_cleared_memo_starts_afresh():
    value = [_closure(), [1, 2]]
    with io.BytesIO() as file:
        pickler = flightpickle.Pickler(file)
        pickler.dump(value)
        first = file.getvalue()
        pickler.clear_memo()
        pickler.dump(value)
        assert file.getvalue() == first + first


def test_a_replaced_memo_is_used():
    shared = [1, 2]
    with io.BytesIO() as file:
        pickler = flightpickle.Pickler(file)
        pickler.memo = {id(shared): (0, shared)}
        pickler.dump(shared)
        assert file.getvalue().endswith(b"h\x00.")


def test_nesting_past_the_writers_depth_is_left_to_the_c_pickler():
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(20_000)
    try:
        deep = None
        for _ in range(3000):
            deep = [deep]
        if sys.version_info < (3, 12):
            assert _pickler_dumps(deep) == pickle.dumps(deep, protocol=5)
        else:
            # 3.12 bounds the C pickler's nesting by CPython's C recursion
            # limit, which `sys.setrecursionlimit` does not raise: it fails as
            # `pickle` fails.
            with pytest.raises(RecursionError):
                pickle.dumps(deep, protocol=5)
            with pytest.raises(pickle.PicklingError, match="excessively deep recursion"):
                _pickler_dumps(deep)
    finally:
        sys.setrecursionlimit(limit)


def test_failures_name_the_path_as_before():
    import threading

    with pytest.raises(pickle.PicklingError, match=r"obj\['lock'\]"):
        _pickler_dumps({"lock": threading.Lock()})


def test_a_negative_protocol_is_the_highest_and_dumps_natively():
    func = _closure()
    pickler = flightpickle.Pickler(io.BytesIO(), protocol=-1)
    assert pickler.proto == pickle.HIGHEST_PROTOCOL
    assert _pickler_dumps(func, protocol=-1) == flightpickle.dumps(func, protocol=5)
    assert _pickler_dumps(func, protocol=-1) != _c_pickler_dumps(func, protocol=5)
    assert _pickler_dumps([1, "a"], protocol=-1) == pickle.dumps([1, "a"], protocol=-1)


def test_an_instance_reducer_override_that_is_the_default_one_still_dumps_natively():
    # The check reads the attribute as the C pickler does; an instance that
    # holds the state's very own method is the default pickler.
    func = _closure()
    with io.BytesIO() as file:
        pickler = flightpickle.Pickler(file)
        pickler.reducer_override = pickler.reducer_override
        pickler.dump(func)
        assert file.getvalue() == flightpickle.dumps(func)
