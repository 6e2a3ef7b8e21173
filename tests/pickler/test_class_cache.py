"""What the writer keeps about a class between dumps (its body's layout,
how its members are read) must follow every change of the class: each test
dumps a class, changes it, dumps it again and loads the second pickle in a
fresh interpreter. And what is kept must not keep a class alive."""

import enum
import gc
import sys
import types
import weakref

import pytest

import flightpickle

TARGETS = [{}, {"target": "cloudpickle"}]


@pytest.fixture(params=TARGETS, ids=["native", "cloudpickle"])
def target(request):
    return request.param


def dump_twice(obj, target):
    """Two dumps, so that the second is written from what the first kept."""
    first = flightpickle.dumps(obj, **target)
    assert flightpickle.dumps(obj, **target) == first
    return first


def make_class():
    class Plain:
        colour = "red"

        def describe(self):
            return "plain"

    return Plain


def test_an_attribute_set_between_dumps_travels(load_fresh, target):
    plain = make_class()
    before = dump_twice(plain, target)
    plain.size = 3
    after = flightpickle.dumps(plain, **target)
    assert after != before
    assert load_fresh(after, "result = (obj.size, obj.colour)") == (3, "red")


def test_an_attribute_deleted_between_dumps_is_gone(load_fresh, target):
    plain = make_class()
    dump_twice(plain, target)
    del plain.colour
    after = flightpickle.dumps(plain, **target)
    assert load_fresh(after, "result = hasattr(obj, 'colour')") is False


def test_a_method_added_between_dumps_travels(load_fresh, target):
    plain = make_class()
    dump_twice(plain, target)
    plain.shout = lambda self: "loud"
    after = flightpickle.dumps(plain, **target)
    assert load_fresh(after, "result = (obj().shout(), obj().describe())") == ("loud", "plain")


def test_a_renamed_class_travels_under_its_new_names(load_fresh, target):
    plain = make_class()
    dump_twice(plain, target)
    plain.__name__ = "Renamed"
    plain.__qualname__ = "Outer.Renamed"
    after = flightpickle.dumps(plain, **target)
    assert load_fresh(after, "result = (obj.__name__, obj.__qualname__)") == ("Renamed", "Outer.Renamed")


def test_a_change_in_a_base_reaches_the_subclass(load_fresh, target):
    shared = "shared"

    class Base:
        value = shared

    class Child(Base):
        # The very object the base holds: left out of the body, as inherited.
        value = shared

    dump_twice(Child, target)
    Base.value = "changed in the base"
    after = flightpickle.dumps(Child, **target)
    check = "result = (obj.value, obj.__mro__[1].value)"
    assert load_fresh(after, check) == ("shared", "changed in the base")


def test_a_class_with_its_own_metaclass_follows_changes(load_fresh, target):
    class Meta(type):
        pass

    class Managed(metaclass=Meta):
        limit = 1

    dump_twice(Managed, target)
    Managed.limit = 2
    Managed.extra = "new"
    after = flightpickle.dumps(Managed, **target)
    check = "result = (obj.limit, obj.extra, type(obj).__name__)"
    assert load_fresh(after, check) == (2, "new", "Meta")


def test_a_change_in_the_metaclass_is_seen(load_fresh, target):
    class Counting(enum.EnumMeta):
        pass

    class Level(enum.Enum, metaclass=Counting):
        LOW = 1
        HIGH = 2

    dump_twice(Level, target)
    # Iterating the class now gives its members in reverse: the writer
    # must ask the metaclass again, not read the member tables it read.
    Counting.__iter__ = lambda cls: reversed([cls._member_map_[name] for name in cls._member_names_])
    after = flightpickle.dumps(Level, **target)
    assert load_fresh(after, "result = obj._member_names_") == ["HIGH", "LOW"]


def make_enum():
    class Colour(enum.Enum):
        RED = 1
        GREEN = 2

        def describe(self):
            return self.name.lower()

    return Colour


def member_named(colour, name, value):
    member = object.__new__(colour)
    member._name_ = name
    member._value_ = value
    member.__init__()
    return member


def test_an_enum_member_added_through_the_metaclass_travels(load_fresh, target):
    colour = make_enum()
    dump_twice(colour, target)
    blue = member_named(colour, "BLUE", 3)
    # Through the metaclass's own `__setattr__` (before the member is in
    # the map, which it guards), then the tables.
    type(colour).__setattr__(colour, "BLUE", blue)
    colour._member_names_.append("BLUE")
    colour._member_map_["BLUE"] = blue
    colour._value2member_map_[3] = blue
    after = flightpickle.dumps(colour, **target)
    check = "result = ([m.name for m in obj], obj(3).describe(), obj.BLUE.value)"
    assert load_fresh(after, check) == (["RED", "GREEN", "BLUE"], "blue", 3)


def test_an_enum_member_added_to_the_tables_alone_travels(load_fresh, target):
    colour = make_enum()
    dump_twice(colour, target)
    # The class's namespace (and so its version) does not change: only
    # the tables the members are read from.
    blue = member_named(colour, "BLUE", 3)
    colour._member_names_.append("BLUE")
    colour._member_map_["BLUE"] = blue
    colour._value2member_map_[3] = blue
    after = flightpickle.dumps(colour, **target)
    assert load_fresh(after, "result = [m.name for m in obj]") == ["RED", "GREEN", "BLUE"]


def test_an_enum_member_whose_value_changed_travels_with_it(load_fresh, target):
    colour = make_enum()
    dump_twice(colour, target)
    colour.GREEN._value_ = 20
    after = flightpickle.dumps(colour, **target)
    assert load_fresh(after, "result = obj.GREEN.value") == 20


def test_slots_held_in_a_list_are_read_on_every_dump(load_fresh, target):
    class Slotted:
        __slots__ = ["a"]
        b = "class attribute"

    dump_twice(Slotted, target)
    # The list that filters the body changes; the class does not.
    Slotted.__slots__.append("b")
    after = flightpickle.dumps(Slotted, **target)
    # A slot now: its descriptor, not the old class attribute.
    assert load_fresh(after, "result = type(vars(obj)['b']).__name__") == "member_descriptor"


def test_kept_classes_and_their_module_can_be_freed():
    module = types.ModuleType("fp_class_cache_module")
    exec(
        "class Held:\n"
        "    def method(self):\n"
        "        return Held\n"
        "class Colour(__import__('enum').Enum):\n"
        "    RED = 1\n",
        module.__dict__,
    )
    sys.modules[module.__name__] = module
    flightpickle.register_pickle_by_value(module)
    try:
        for _ in range(2):
            for target in TARGETS:
                flightpickle.dumps(module.Held, **target)
                flightpickle.dumps(module.Colour, **target)
    finally:
        flightpickle.unregister_pickle_by_value(module)
        del sys.modules[module.__name__]
    refs = [weakref.ref(module), weakref.ref(module.Held), weakref.ref(module.Colour)]
    del module
    gc.collect()
    assert [ref() for ref in refs] == [None, None, None]


def test_many_classes_dumped_in_turn_are_all_freed(target):
    refs = []
    for _ in range(100):
        plain = make_class()
        dump_twice(plain, target)
        refs.append(weakref.ref(plain))
        del plain
    gc.collect()
    assert all(ref() is None for ref in refs)
