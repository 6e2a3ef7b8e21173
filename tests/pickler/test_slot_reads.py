"""Slots of default-reduced objects read at their offsets.

The native writer reads a slot straight from the instance when the name
leads to a plain ``__slots__`` member descriptor, and by ``getattr``
otherwise. Either way the state must be what ``object.__getstate__`` (which
uses ``getattr``) makes: each shape here is compared, byte for byte, with
the old way (``__reduce_ex__`` called, forced through
``_native.set_native_default_reduce(False)``) and with the state that
``__reduce_ex__`` itself returns.
"""

import pickle

import pytest

import flightpickle
from flightpickle import _native

PROTOCOLS = [2, 3, 4, 5]


class Base:
    __slots__ = ("a", "b", "c")


class Counting:
    """A data descriptor that counts its reads: proof that it was called."""

    def __init__(self):
        self.reads = 0

    def __get__(self, obj, owner=None):
        if obj is None:
            return self
        self.reads += 1
        return "from the descriptor"

    def __set__(self, obj, value):
        # Where loading puts the state: the base slot under this name.
        Base.b.__set__(obj, value)


class OwnDescriptor(Base):
    __slots__ = ()
    b = Counting()


class OwnGetattribute(Base):
    __slots__ = ()
    reads = []

    def __getattribute__(self, name):
        type(self).reads.append(name)
        return object.__getattribute__(self, name)


class Unrelated:
    __slots__ = ("x",)


class BorrowedDescriptor:
    # Another class's slot descriptor: `getattr` refuses it (TypeError),
    # since this object is not an instance of the descriptor's class.
    __slots__ = ("own",)
    x = Unrelated.x


BorrowedDescriptor.__slotnames__ = ["own", "x"]


class NameSubclass(str):
    pass


class OddName:
    __slots__ = ("a",)


OddName.__slotnames__ = [NameSubclass("a")]


def _base(**values):
    made = Base()
    for name, value in values.items():
        setattr(made, name, value)
    return made


def _own_descriptor():
    made = OwnDescriptor()
    made.a = 1
    Base.b.__set__(made, "hidden under the descriptor")
    return made


def _own_getattribute():
    made = OwnGetattribute()
    made.a = [1]
    return made


def _odd_name():
    made = OddName()
    made.a = "value"
    return made


SHAPES = {
    "all set": lambda: _base(a=1, b="two", c=[3]),
    "none set": lambda: _base(),
    "first unset": lambda: _base(b=2, c=3),
    "set then deleted": lambda: _deleted(),
    "holding None": lambda: _base(a=None),
    "a subclass's own descriptor": _own_descriptor,
    "a subclass's own __getattribute__": _own_getattribute,
    "a str subclass as a slot name": _odd_name,
}


def _deleted():
    made = _base(a=1, b=2)
    del made.a
    return made


def _both_ways(obj, protocol):
    flightpickle.dumps(obj, protocol=protocol)  # caches `__slotnames__`
    new = flightpickle.dumps(obj, protocol=protocol)
    was_on = _native.set_native_default_reduce(False)
    try:
        old = flightpickle.dumps(obj, protocol=protocol)
    finally:
        _native.set_native_default_reduce(was_on)
    return new, old


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("name", list(SHAPES))
def test_slot_state_is_what_getattr_reads(name, protocol):
    obj = SHAPES[name]()
    new, old = _both_ways(obj, protocol)
    assert new == old
    assert new == pickle.dumps(obj, protocol=protocol)


@pytest.mark.parametrize("name", ["all set", "first unset", "set then deleted", "none set"])
def test_an_unset_slot_is_absent_from_the_state(name):
    obj = SHAPES[name]()
    state = obj.__reduce_ex__(5)[2]
    loaded = flightpickle.loads(flightpickle.dumps(obj))
    for slot in Base.__slots__:
        expected = state[1].get(slot, "unset") if state else "unset"
        assert getattr(loaded, slot, "unset") == expected


def test_a_subclass_descriptor_is_called_not_bypassed():
    obj = _own_descriptor()
    before = OwnDescriptor.b.reads
    loaded = flightpickle.loads(flightpickle.dumps(obj))
    assert OwnDescriptor.b.reads > before
    # The base slot under the descriptor is not what the state holds.
    assert Base.b.__get__(loaded) == "from the descriptor"


def test_a_subclass_getattribute_sees_every_slot_read():
    obj = _own_getattribute()
    OwnGetattribute.reads.clear()
    flightpickle.dumps(obj)
    assert {"a", "b", "c"} <= set(OwnGetattribute.reads)


def test_a_borrowed_descriptor_raises_as_getattr_does():
    obj = BorrowedDescriptor()
    obj.own = 1
    errors = []
    for native in (True, False):
        was_on = _native.set_native_default_reduce(native)
        try:
            with pytest.raises(TypeError) as raised:
                flightpickle.dumps(obj)
        finally:
            _native.set_native_default_reduce(was_on)
        errors.append(str(raised.value))
    assert errors[0] == errors[1]
    with pytest.raises(TypeError):
        pickle.dumps(obj)


def _class_holding(*objects):
    """A class that travels by value (defined in a function), holding
    `objects`: its body's strings are written by their text."""

    class Holder:
        pass

    Holder.held = list(objects)
    return Holder


def _fresh(text):
    """An equal str that is not the interned one."""
    return "".join(list(text))


class Renamed:
    __slots__ = ("a", "b")


# Equal names, other objects than the ones `Base` lists: the writer must
# find them by their text, not by having written those objects before.
Renamed.__slotnames__ = [_fresh("a"), _fresh("b")]


class Doubled:
    __slots__ = ("a",)


# One name twice, as two objects: the state keeps one entry.
Doubled.__slotnames__ = ["a", _fresh("a")]


def _doubled():
    made = Doubled()
    made.a = 1
    return made


def _renamed():
    made = Renamed()
    made.a, made.b = "x", "y"
    return made


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize(
    "make",
    [
        lambda: [_base(a=1, b=2, c=3), _base(b=4), _base(a=5, c=6)],
        lambda: [_base(a=1, b=2), _renamed(), _base(a=3, b=4), _renamed()],
        lambda: [_doubled(), _base(a=1), _doubled()],
        lambda: [_own_descriptor(), _base(a=1, b=2), _own_getattribute()],
    ],
    ids=["one class", "equal names, other objects", "a name twice", "mixed roads"],
)
def test_slot_names_in_a_class_by_value(make, protocol):
    holder = _class_holding(*make())
    new, old = _both_ways(holder, protocol)
    assert new == old
    loaded = flightpickle.loads(new)
    for was, now in zip(holder.held, loaded.held):
        for slot in type(was).__slotnames__:
            assert getattr(now, slot, "unset") == getattr(was, slot, "unset")
