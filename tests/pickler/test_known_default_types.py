"""Types the writer knows to keep ``object``'s reduce methods.

Whether a default-reduced object's type keeps ``object``'s
``__reduce_ex__``, ``__reduce__``, ``__getstate__`` and ``__class__`` is
remembered per type while its version tag and its metaclass's hold. A type
changed after a dump, directly, through a base or through its metaclass,
must be checked again: each case here changes a type that was written the
default way and compares the next pickle with the old way's
(``__reduce_ex__`` called, forced through
``_native.set_native_default_reduce(False)``).
"""

import copyreg
import sys
import types

import pytest

import flightpickle
from flightpickle import _native

PROTOCOLS = [2, 3, 4, 5]


def rebuild(state):
    """What the changed types reduce to."""
    return ("rebuilt", state)


def _old_way(obj, protocol):
    was_on = _native.set_native_default_reduce(False)
    try:
        return flightpickle.dumps(obj, protocol=protocol)
    finally:
        _native.set_native_default_reduce(was_on)


def _make_types():
    class Meta(type):
        pass

    class Base(metaclass=Meta):
        def __init__(self, value):
            self.value = value

    class Derived(Base):
        pass

    return Meta, Base, Derived


def _own_reduce(self):
    return rebuild, (self.value,)


def _own_getstate(self):
    return {"value": "from getstate"}


def _change_the_type(Meta, Base, Derived):
    Derived.__reduce__ = _own_reduce


def _change_a_base(Meta, Base, Derived):
    Base.__getstate__ = _own_getstate


def _change_the_metaclass(Meta, Base, Derived):
    # A data descriptor on the metaclass: `type(obj).__reduce__` finds it
    # before the class's own, so the default reduction is not certain.
    Meta.__reduce__ = property(lambda cls: _own_reduce)


def _add_getnewargs(Meta, Base, Derived):
    Base.__getnewargs__ = lambda self: (self.value,)


CHANGES = {
    "the type": _change_the_type,
    "a base": _change_a_base,
    "the metaclass": _change_the_metaclass,
    "__getnewargs__ on a base": _add_getnewargs,
}


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("change", list(CHANGES))
def test_a_type_changed_after_a_dump_is_checked_again(change, protocol):
    Meta, Base, Derived = _make_types()
    obj = Derived(1)
    before = flightpickle.dumps(obj, protocol=protocol)
    assert before == _old_way(obj, protocol)
    # Twice: the second dump is answered from what the first one learnt.
    assert flightpickle.dumps(obj, protocol=protocol) == before
    CHANGES[change](Meta, Base, Derived)
    after = flightpickle.dumps(obj, protocol=protocol)
    assert after == _old_way(obj, protocol)
    assert after != before


def test_more_types_than_are_remembered_are_each_checked():
    kinds = [_make_types()[2] for _ in range(20)]
    objects = [kind(number) for number, kind in enumerate(kinds)]
    for _ in range(3):
        assert flightpickle.dumps(objects) == _old_way(objects, 5)
    for kind in kinds[::3]:
        kind.__reduce__ = _own_reduce
    changed = flightpickle.dumps(objects)
    assert changed == _old_way(objects, 5)
    loaded = flightpickle.loads(changed)
    assert [item == ("rebuilt", number) for number, item in enumerate(loaded)] == [
        number % 3 == 0 for number in range(20)
    ]


def test_a_type_made_where_a_known_one_was_is_checked_again():
    # A type freed and another made, perhaps at the same address: the new
    # one has another version tag, and is checked on its own.
    for number in range(50):
        Meta, Base, Derived = _make_types()
        if number % 2:
            Derived.__reduce__ = _own_reduce
        obj = Derived(number)
        payload = flightpickle.dumps(obj)
        assert payload == _old_way(obj, 5)
        expected = ("rebuilt", number) if number % 2 else number
        loaded = flightpickle.loads(payload)
        assert (loaded if number % 2 else loaded.value) == expected


def newobj_elsewhere(cls, *args):
    """A `__newobj__` of another module's: the default reduction names it."""
    return cls.__new__(cls, *args)


def test_copyreg_replaced_in_sys_modules_after_a_dump(monkeypatch):
    Meta, Base, Derived = _make_types()
    obj = Derived(1)
    assert flightpickle.dumps(obj) == _old_way(obj, 5)
    flightpickle.dumps(obj)
    stand_in = types.ModuleType("copyreg")
    stand_in.__dict__.update(vars(copyreg))
    stand_in.__newobj__ = newobj_elsewhere
    monkeypatch.setitem(sys.modules, "copyreg", stand_in)
    after = flightpickle.dumps(obj)
    assert after == _old_way(obj, 5)
    assert b"newobj_elsewhere" in after
