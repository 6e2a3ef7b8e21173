"""Slot offsets kept per type for default-reduced objects.

Once the slots of a type's object have all been read at plain offsets, the
writer keeps the offsets for the next objects of that type while the type,
its bases and its metaclass are unchanged and its ``__slotnames__`` holds
the same names. Every case here must give the bytes of the old way
(``__reduce_ex__`` called, forced through
``_native.set_native_default_reduce(False)``), before and after changes
that leave the plan useless.
"""

import pytest

import flightpickle
from flightpickle import _native

PROTOCOLS = [2, 3, 4, 5]


def _old_way(obj, protocol):
    was_on = _native.set_native_default_reduce(False)
    try:
        return flightpickle.dumps(obj, protocol=protocol)
    finally:
        _native.set_native_default_reduce(was_on)


def _same_both_ways(obj, protocol=5):
    new = flightpickle.dumps(obj, protocol=protocol)
    assert new == _old_way(obj, protocol)
    return new


def _make_types():
    class Base:
        __slots__ = ("a", "b")

    class Derived(Base):
        __slots__ = ("c", "__weakref__")

    return Base, Derived


def _objects(kind, count):
    objects = []
    for number in range(count):
        obj = kind()
        obj.a = number
        if number % 3:
            obj.b = f"b{number}"
        if number % 2:
            obj.c = (number,)
        objects.append(obj)
    return objects


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_objects_of_one_type_in_one_dump_and_the_next(protocol):
    _, Derived = _make_types()
    objects = _objects(Derived, 10)
    first = _same_both_ways(objects, protocol)
    assert _same_both_ways(objects, protocol) == first
    loaded = flightpickle.loads(first)
    assert [getattr(obj, "b", None) for obj in loaded] == [getattr(obj, "b", None) for obj in objects]
    assert [getattr(obj, "c", None) for obj in loaded] == [getattr(obj, "c", None) for obj in objects]


def _shadow_a_slot_in_the_base(Base, Derived):
    Base.a = property(lambda self: "shadowed")


def _shadow_a_slot_in_the_type(Base, Derived):
    Derived.b = property(lambda self: "shadowed")


def _reorder_the_names(Base, Derived):
    Derived.__slotnames__.reverse()


def _replace_a_name_by_a_copy(Base, Derived):
    name = Derived.__slotnames__[0]
    Derived.__slotnames__[0] = "".join([name[:1], name[1:]])


def _repeat_a_name(Base, Derived):
    Derived.__slotnames__.append(Derived.__slotnames__[0])


def _new_slot_names_list(Base, Derived):
    Derived.__slotnames__ = list(Derived.__slotnames__) + ["a"]


CHANGES = {
    "a base's slot shadowed": _shadow_a_slot_in_the_base,
    "the type's slot shadowed": _shadow_a_slot_in_the_type,
    "names reordered": _reorder_the_names,
    "a name replaced by an equal copy": _replace_a_name_by_a_copy,
    "a name repeated": _repeat_a_name,
    "a new list of names": _new_slot_names_list,
}


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("change", list(CHANGES))
def test_a_changed_type_or_list_of_names_is_read_again(change, protocol):
    Base, Derived = _make_types()
    objects = _objects(Derived, 6)
    before = _same_both_ways(objects, protocol)
    _same_both_ways(objects, protocol)
    CHANGES[change](Base, Derived)
    after = _same_both_ways(objects, protocol)
    if change in ("a base's slot shadowed", "the type's slot shadowed", "names reordered"):
        assert after != before


def test_more_types_than_plans():
    kinds = [_make_types()[1] for _ in range(20)]
    objects = [obj for kind in kinds for obj in _objects(kind, 3)]
    for _ in range(3):
        _same_both_ways(objects)
    for kind in kinds[::4]:
        kind.c = property(lambda self: "shadowed")
    # Loading would fail: the shadowing properties take no value.
    assert b"shadowed" in _same_both_ways(objects)


def test_a_type_made_where_a_planned_one_was():
    for number in range(40):
        Base, Derived = _make_types()
        if number % 2:
            Derived.__slotnames__ = ["c", "b", "a"]
        _same_both_ways(_objects(Derived, 3))
