"""Objects reduced by ``object.__reduce_ex__``, written by the native writer
without calling it.

The writer must write exactly what calling ``__reduce_ex__`` and writing its
tuple writes, and take that old way for any object it is not sure of. Each
object here is dumped both ways (the old one forced through
``_native.set_native_default_reduce(False)``) and the bytes compared.
"""

import copyreg
import dataclasses
import enum
import io
import threading
import weakref

import pytest

import flightpickle
from flightpickle import _native

PROTOCOLS = [2, 3, 4, 5]


class Plain:
    def __init__(self, **attrs):
        self.__dict__.update(attrs)


class Slotted:
    __slots__ = ("a", "b", "_Slotted__hidden")

    def __init__(self, a=None, b=None):
        if a is not None:
            self.a = a
        if b is not None:
            self.b = b


class MoreSlots(Slotted):
    __slots__ = ("c",)


class SlotsAndDict:
    __slots__ = ("a", "__dict__")


class SlotsAndWeakref:
    __slots__ = ("a", "__weakref__")


class OwnGetstate:
    def __init__(self):
        self.x = 1

    def __getstate__(self):
        return {"x": self.x * 2}


class OwnReduceEx(Plain):
    def __reduce_ex__(self, protocol):
        return (Plain, (), {"via": "reduce_ex"})


class OwnReduce(Plain):
    def __reduce__(self):
        return (Plain, (), {"via": "reduce"})


class OwnNewargs:
    def __new__(cls, value):
        made = super().__new__(cls)
        made.value = value
        return made

    def __getnewargs__(self):
        return (self.value,)


class OwnNewargsEx(OwnNewargs):
    def __getnewargs_ex__(self):
        return ((self.value,), {})


class WithGetattr(Plain):
    def __getattr__(self, name):
        raise AttributeError(name)


class FakeClass(Plain):
    @property
    def __class__(self):
        return Plain


class SlotShadowedByProperty(Slotted):
    __slots__ = ()

    @property
    def a(self):
        return "from the property"


class Tagged(list):
    pass


class Table(dict):
    pass


class Word(str):
    pass


class Number(int):
    pass


class Pair(tuple):
    pass


class Colour(enum.Enum):
    RED = 1


@dataclasses.dataclass
class Point:
    x: int
    y: int = 0


@dataclasses.dataclass(slots=True)
class SlottedPoint:
    x: int
    y: int = 0


class SlotRepeated(Slotted):
    # `__slotnames__` then names "a" twice; the state keeps it once.
    __slots__ = ("a",)


def _slotted(**values):
    made = Slotted()
    for name, value in values.items():
        setattr(made, name, value)
    return made


def _shapes():
    emptied = Plain(a=1)
    del emptied.a
    own_reduce_ex_in_dict = Plain(a=1)
    own_reduce_ex_in_dict.__reduce_ex__ = lambda protocol: (Plain, (), {"via": "instance"})
    own_getstate_in_dict = Plain(a=1)
    own_getstate_in_dict.__getstate__ = lambda: {"via": "instance"}
    looped = Plain()
    looped.me = looped
    shared = Plain(v=[1, 2])
    more = MoreSlots(1)
    more.c = "c"
    slots_and_dict = SlotsAndDict()
    slots_and_dict.a = 1
    slots_and_dict.extra = 2
    only_dict = SlotsAndDict()
    only_dict.extra = 3
    with_weakref = SlotsAndWeakref()
    with_weakref.a = [1]
    keep_alive = weakref.ref(with_weakref)
    repeated = SlotRepeated(1, 2)
    Slotted.a.__set__(repeated, "the base's")
    slot_cycle = Slotted(b=2)
    slot_cycle.a = [slot_cycle]
    many_slots = type("ManySlots", (), {"__slots__": tuple(f"s{i}" for i in range(40))})()
    for i in range(0, 40, 3):
        setattr(many_slots, f"s{i}", i)
    tagged = Tagged([1, 2])
    tagged.label = "l"
    table = Table(a=1)
    table.label = "t"
    return {
        "plain": Plain(a=1, b="two", c=[3]),
        "empty": Plain(),
        "emptied dict": emptied,
        "nested": Plain(child=Plain(child=Plain(leaf=True))),
        "shared": [shared, shared, (shared,)],
        "cycle": looped,
        "slots": Slotted(1, 2),
        "slots unset": Slotted(),
        "slots partly set": Slotted(b=2),
        "private slot": _slotted(_Slotted__hidden="h"),
        "slot repeated in a subclass": repeated,
        "slot holding its object": slot_cycle,
        "many slots": many_slots,
        "more slots": more,
        "slots and dict": slots_and_dict,
        "dict beside empty slots": only_dict,
        "slots and weakref": (with_weakref, keep_alive is not None),
        "slot shadowed by a property": SlotShadowedByProperty(b=1),
        "dataclass field": dataclasses.field(default=1, metadata={"k": "v"}),
        "dataclass fields": dataclasses.fields(Point),
        "dataclass instance": Point(1, 2),
        "slotted dataclass instance": SlottedPoint(1),
        "dataclass class": Point,
        "getstate of its own": OwnGetstate(),
        "reduce_ex of its own": OwnReduceEx(a=1),
        "reduce of its own": OwnReduce(a=1),
        "reduce_ex in the instance dict": own_reduce_ex_in_dict,
        "getstate in the instance dict": own_getstate_in_dict,
        "getnewargs": OwnNewargs(5),
        "getnewargs_ex": OwnNewargsEx(6),
        "getattr of its own": WithGetattr(a=1),
        "list subclass": tagged,
        "dict subclass": table,
        "str subclass": Word("w"),
        "int subclass": Number(7),
        "tuple subclass": Pair((1, 2)),
        "enum member": Colour.RED,
        "object()": object(),
    }


def _pickler_dumps(obj, protocol):
    """``obj`` through ``flightpickle.Pickler(file).dump``, the class path."""
    with io.BytesIO() as file:
        flightpickle.Pickler(file, protocol=protocol).dump(obj)
        return file.getvalue()


def _dump_both_ways(obj, protocol, dumps=flightpickle.dumps):
    new = dumps(obj, protocol=protocol)
    was_on = _native.set_native_default_reduce(False)
    try:
        old = dumps(obj, protocol=protocol)
    finally:
        _native.set_native_default_reduce(was_on)
    assert was_on
    return new, old


@pytest.mark.parametrize("dumps", [flightpickle.dumps, _pickler_dumps], ids=["dumps", "Pickler"])
@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("name", list(_shapes()))
def test_the_bytes_are_those_of_reduce_ex(name, protocol, dumps):
    obj = _shapes()[name]
    # The old way caches `__slotnames__` on first use; dump once first so
    # that the comparison sees the native writer, not its fallback.
    dumps(obj, protocol=protocol)
    new, old = _dump_both_ways(obj, protocol, dumps)
    assert new == old
    assert new == flightpickle.dumps(obj, protocol=protocol)


class OwnReducerOverride(flightpickle.Pickler):
    """Its own ``reducer_override``, which sees every object: the C pickler's."""

    def __init__(self, file, protocol=None):
        super().__init__(file, protocol=protocol)
        self.seen = []

    def reducer_override(self, obj):
        self.seen.append(type(obj))
        return super().reducer_override(obj)


@pytest.mark.parametrize("name", ["plain", "slots", "dataclass instance"])
def test_a_pickler_with_its_own_reducer_override_sees_default_reduced_objects(name):
    obj = _shapes()[name]
    with io.BytesIO() as file:
        pickler = OwnReducerOverride(file, protocol=5)
        pickler.dump(obj)
        payload = file.getvalue()
    assert type(obj) in pickler.seen
    assert payload == flightpickle.dumps(obj, protocol=5)


def test_default_reduced_objects_round_trip():
    more = MoreSlots(1, 2)
    more.c = 3
    both = SlotsAndDict()
    both.a, both.extra = 1, 2
    loaded_more, loaded_both, field, point = flightpickle.loads(
        flightpickle.dumps([more, both, dataclasses.field(default=5), SlottedPoint(4)])
    )
    assert (loaded_more.a, loaded_more.b, loaded_more.c) == (1, 2, 3)
    assert (loaded_both.a, loaded_both.extra) == (1, 2)
    assert field.default == 5 and type(field.default_factory) is type(dataclasses.MISSING)
    assert point == SlottedPoint(4)


def test_a_class_by_value_holding_its_own_instance():
    class Holder:
        pass

    Holder.default = Holder()
    Holder.default.tag = "default"
    flightpickle.dumps(Holder.default)
    new, old = _dump_both_ways(Holder.default, 5)
    assert new == old
    loaded = flightpickle.loads(new)
    assert type(loaded).default is loaded
    assert loaded.tag == "default"


def test_a_class_whose_slot_names_are_not_cached_yet():
    class Fresh:
        __slots__ = ("a",)

    made = Fresh()
    made.a = 1
    assert "__slotnames__" not in Fresh.__dict__
    first = flightpickle.dumps(made)
    assert Fresh.__dict__["__slotnames__"] == ["a"]
    new, old = _dump_both_ways(made, 5)
    assert first == new == old


def test_a_table_entry_wins_over_the_default(monkeypatch):
    monkeypatch.setitem(copyreg.dispatch_table, Plain, lambda obj: (Plain, (), {"via": "table"}))
    assert flightpickle.loads(flightpickle.dumps(Plain(a=1))).via == "table"


def make_instance(cls):
    """A stand-in for ``copyreg.__newobj__`` under another name: the old way
    writes a call to it instead of NEWOBJ."""
    return cls.__new__(cls)


def test_a_replaced_copyreg_newobj_is_written_as_the_old_way_writes_it(monkeypatch):
    obj = Plain(a=1)
    flightpickle.dumps(obj)
    monkeypatch.setattr(copyreg, "__newobj__", make_instance)
    new, old = _dump_both_ways(obj, 5)
    assert new == old
    assert b"make_instance" in new
    assert flightpickle.loads(new).a == 1


def _error_of(obj, native):
    was_on = _native.set_native_default_reduce(native)
    try:
        with pytest.raises(Exception) as raised:
            flightpickle.dumps(obj)
    finally:
        _native.set_native_default_reduce(was_on)
    return type(raised.value), str(raised.value)


class BrokenSlot:
    __slots__ = ("a",)

    @property
    def b(self):
        raise ValueError("no b here")


BrokenSlot.__slotnames__ = ["a", "b"]


class GrowingSlots:
    __slots__ = ("a",)

    @property
    def b(self):
        GrowingSlots.__slotnames__.append("c")
        return 1


GrowingSlots.__slotnames__ = ["b", "a"]


@pytest.mark.parametrize(
    "make",
    [threading.Lock, BrokenSlot, GrowingSlots, FakeClass],
    ids=["lock", "slot getter raising", "slot names growing", "class property"],
)
def test_refusals_are_those_of_reduce_ex(make):
    obj = make()
    assert _error_of(obj, True) == _error_of(obj, False)


def test_state_is_read_when_dumped_not_before():
    obj = Slotted(1)
    first = flightpickle.loads(flightpickle.dumps(obj))
    obj.a = 2
    second = flightpickle.loads(flightpickle.dumps(obj))
    assert (first.a, second.a) == (1, 2)
