"""Dynamic classes travel by value, with their methods, descriptors and
metaclass; loading one twice in a process yields the same class."""

import abc
import io
import dataclasses
import enum
import pickle
import pickletools
import typing

import cloudpickle
import pytest

import flightpickle

RATE = 2


def make_shapes():
    class Shape:
        """A shape."""

        sides = 0

        def __init__(self, size):
            self.size = size

        def perimeter(self):
            return self.sides * self.size * RATE

        @property
        def double(self):
            return self.size * 2

        @classmethod
        def named(cls):
            return cls.__name__

        @staticmethod
        def unit():
            return "cm"

    class Square(Shape):
        sides = 4

        def perimeter(self):
            return super().perimeter() + 1

    return Shape, Square


def test_class_with_methods_and_descriptors(load_fresh, protocol):
    shape, square = make_shapes()
    data = flightpickle.dumps((shape, square, square(3)), protocol=protocol)
    check = """
    Shape, Square, sq = obj
    result = (sq.perimeter(), sq.double, Square.named(), Square.unit(), type(sq) is Square,
              issubclass(Square, Shape), Shape.__doc__, Square.__qualname__, Shape(1).perimeter())
    """
    assert load_fresh(data, check) == (25, 6, "Square", "cm", True, True, "A shape.",
                                       "make_shapes.<locals>.Square", 0)


def test_class_tracking_gives_the_same_class_on_repeated_loads(load_fresh, protocol):
    shape, square = make_shapes()
    first = flightpickle.dumps(square, protocol=protocol)
    second = flightpickle.dumps(square(2), protocol=protocol)
    payload = pickle.dumps((first, second))
    check = """
    import pickle
    first, second = obj
    a = pickle.loads(first)
    b = pickle.loads(first)
    instance = pickle.loads(second)
    result = (a is b, type(instance) is a, isinstance(instance, a))
    """
    assert load_fresh(payload, check) == (True, True, True)


def test_tracking_in_process_round_trip():
    shape, square = make_shapes()
    data = flightpickle.dumps(square)
    assert pickle.loads(data) is square
    assert pickle.loads(flightpickle.dumps(pickle.loads(data))) is square


def make_counted_child():
    """A base whose `__init_subclass__` counts, in `builtins` (which a fresh
    interpreter has too), the subclasses made of it, and one subclass."""

    class CountingBase:
        def __init_subclass__(cls, **kwargs):
            super().__init_subclass__(**kwargs)
            import builtins

            builtins.__dict__.setdefault("_subclasses_made", []).append(cls.__name__)

    class Child(CountingBase):
        pass

    return Child


def test_a_tracked_class_is_taken_without_making_another(load_fresh, protocol):
    # cloudpickle makes a class on every load and then drops it for the
    # tracked one, running `__init_subclass__` each time.
    import builtins

    try:
        child = make_counted_child()
        data = flightpickle.dumps(child, protocol=protocol)
        assert pickle.loads(data) is child and pickle.loads(data) is child
        assert builtins._subclasses_made == ["Child"]
    finally:
        builtins.__dict__.pop("_subclasses_made", None)
    check = """
    import builtins
    first, second = pickle.loads(obj), pickle.loads(obj)
    result = (first is second, builtins._subclasses_made)
    """
    assert load_fresh(pickle.dumps(data), check) == (True, ["Child"])


def test_a_tracked_class_still_takes_the_state_of_each_load():
    # As with cloudpickle: the body in the pickle is set again on the class.
    class Settings:
        mode = "original"

    data = flightpickle.dumps(Settings)
    Settings.mode = "changed"
    assert pickle.loads(data) is Settings
    assert Settings.mode == "original"


def test_forgetting_tracked_loads_makes_the_next_load_a_first_one():
    from flightpickle import _native

    shape, square = make_shapes()
    data = flightpickle.dumps(square)
    _native._forget_tracked_loads()
    fresh = pickle.loads(data)
    assert fresh is not square and fresh.__qualname__ == square.__qualname__
    assert pickle.loads(data) is fresh
    # The class defined here keeps the id its dumps gave it.
    assert flightpickle.dumps(square) == data


def test_slots(load_fresh, protocol):
    class Point:
        __slots__ = ("x", "y")

        def __init__(self, x, y):
            self.x, self.y = x, y

        def norm2(self):
            return self.x ** 2 + self.y ** 2

    class Named:
        __slots__ = "name"

    data = flightpickle.dumps((Point(3, 4), Named), protocol=protocol)
    check = """
    point, Named = obj
    n = Named(); n.name = 'x'
    result = (point.norm2(), hasattr(point, '__dict__'), Named.__slots__, n.name)
    """
    assert load_fresh(data, check) == (25, False, "name", "x")


def test_metaclass(load_fresh, protocol):
    class Registry(type):
        def __new__(mcs, name, bases, ns):
            ns.setdefault("registered", True)
            return super().__new__(mcs, name, bases, ns)

        def describe(cls):
            return f"{cls.__name__} via {type(cls).__name__}"

    class Plugin(metaclass=Registry):
        pass

    data = flightpickle.dumps(Plugin, protocol=protocol)
    check = "result = (obj.describe(), obj.registered, type(obj).__name__)"
    assert load_fresh(data, check) == ("Plugin via Registry", True, "Registry")


def test_init_subclass_and_inheritance_from_importable_class(load_fresh, protocol):
    class Base:
        children = []

        def __init_subclass__(cls, **kwargs):
            super().__init_subclass__(**kwargs)
            cls.tag = cls.__name__.lower()

    class Child(Base, dict):
        pass

    data = flightpickle.dumps(Child, protocol=protocol)
    check = "result = (obj.tag, issubclass(obj, dict), obj.__mro__[1].__name__)"
    assert load_fresh(data, check) == ("child", True, "Base")


def test_abc_with_registered_virtual_subclass(load_fresh, protocol):
    class Sized(abc.ABC):
        @abc.abstractmethod
        def size(self):
            ...

    class Impl:
        def size(self):
            return 1

    Sized.register(Impl)
    data = flightpickle.dumps((Sized, Impl), protocol=protocol)
    check = """
    Sized, Impl = obj
    try:
        Sized()
        abstract = False
    except TypeError:
        abstract = True
    result = (issubclass(Impl, Sized), abstract, sorted(Sized.__abstractmethods__))
    """
    assert load_fresh(data, check) == (True, True, ["size"])


def test_enums(load_fresh, protocol):
    class Color(enum.Enum):
        RED = 1
        GREEN = "g"

        def describe(self):
            return f"{self.name}={self.value}"

    class Level(enum.IntEnum):
        LOW = 1
        HIGH = 2

    class Perm(enum.Flag):
        R = 4
        W = 2

    data = flightpickle.dumps((Color, Color.GREEN, Level.HIGH, Perm.R | Perm.W), protocol=protocol)
    check = """
    Color, green, high, rw = obj
    result = (green is Color.GREEN, green.describe(), [c.name for c in Color], high > 1,
              type(high).__name__, rw.value, Color(1).name)
    """
    assert load_fresh(data, check) == (True, "GREEN=g", ["RED", "GREEN"], True, "Level", 6, "RED")


def test_dataclass(load_fresh, protocol):
    @dataclasses.dataclass(frozen=True)
    class Item:
        name: str
        tags: list = dataclasses.field(default_factory=list)
        count: typing.ClassVar[int] = 0

    data = flightpickle.dumps((Item, Item("a", ["t"])), protocol=protocol)
    check = """
    import dataclasses
    Item, item = obj
    result = (item == Item("a", ["t"]), [f.name for f in dataclasses.fields(Item)],
              Item("b").tags, repr(item))
    """
    assert load_fresh(data, check) == (True, ["name", "tags"], [], "test_dataclass.<locals>.Item(name='a', tags=['t'])")


def test_dataclass_fields_without_defaults_say_so_by_identity(load_fresh, protocol):
    # `field.default is MISSING` is how dataclasses and the libraries
    # reading fields tell a required field; a load must keep the sentinels.
    @dataclasses.dataclass
    class Config:
        name: str
        _: dataclasses.KW_ONLY
        retries: int = 3

    data = flightpickle.dumps(Config, protocol=protocol)
    check = """
    import dataclasses
    name, retries = dataclasses.fields(obj)
    result = (name.default is dataclasses.MISSING, name.default_factory is dataclasses.MISSING,
              retries.default, obj.__annotations__["_"] is dataclasses.KW_ONLY,
              dataclasses.replace(obj("a"), name="b").retries)
    """
    assert load_fresh(data, check) == (True, True, 3, True, 3)


def test_named_tuple_and_generic(load_fresh, protocol):
    T = typing.TypeVar("T")

    class Pair(typing.NamedTuple):
        left: int
        right: int = 0

    class Box(typing.Generic[T]):
        def __init__(self, item: T):
            self.item = item

    data = flightpickle.dumps((Pair(1, 2), Box, Box[int]), protocol=protocol)
    check = """
    pair, Box, box_int = obj
    result = (pair.right, pair._fields, Box(3).item, box_int.__origin__ is Box,
              [str(p) for p in Box.__parameters__])
    """
    assert load_fresh(data, check) == (2, ("left", "right"), 3, True, ["~T"])


def test_exception_class(load_fresh, protocol):
    class Boom(ValueError):
        pass

    data = flightpickle.dumps(Boom("bad"), protocol=protocol)
    assert load_fresh(data, "result = (isinstance(obj, ValueError), str(obj))") == (True, "bad")


def test_main_class_in_fresh_interpreters(run_python, load_fresh):
    script = """
    import sys, flightpickle
    SCALE = 10
    class Model:
        def __init__(self, w):
            self.w = w
        def predict(self, x):
            return self.w * x * SCALE
        @property
        def name(self):
            return type(self).__name__
    sys.stdout.buffer.write(flightpickle.dumps((Model, Model(2)), protocol=5))
    """
    data = run_python(script)
    check = """
    Model, m = obj
    result = (m.predict(3), m.name, Model.__module__, type(m) is Model)
    """
    assert load_fresh(data, check) == (60, "Model", "__main__", True)


def test_importable_classes_travel_by_reference(protocol):
    for cls in (enum.Enum, dict, pickle.Pickler, typing.Generic):
        assert flightpickle.dumps(cls, protocol=protocol) == pickle.dumps(cls, protocol=protocol)


@pytest.mark.parametrize("singleton", [None, Ellipsis, NotImplemented])
def test_singleton_types(singleton, protocol):
    assert pickle.loads(flightpickle.dumps(type(singleton), protocol=protocol)) is type(singleton)


def test_same_class_body_as_cloudpickle():
    shape, square = make_shapes()
    ours = flightpickle.Pickler(io.BytesIO(), target="cloudpickle").reducer_override(square)
    theirs = cloudpickle.Pickler(io.BytesIO()).reducer_override(square)
    assert len(ours) == len(theirs) == 6
    assert list(ours[2][0]) == list(theirs[2][0])
    assert ours[1][:3] == theirs[1][:3]
    assert {**theirs[1][3], "__qualname__": square.__qualname__} == ours[1][3]


def test_native_class_shape_is_the_same_body_set_by_build():
    # The metaclass type is written as None, and the body as BUILD's
    # (None, body), which sets it attribute by attribute: no names to find.
    shape, square = make_shapes()
    native = flightpickle.Pickler(io.BytesIO()).reducer_override(square)
    theirs = cloudpickle.Pickler(io.BytesIO()).reducer_override(square)
    assert len(native) == 3 and native[2][0] is None
    assert list(native[2][1]) == list(theirs[2][0])
    assert native[1][:3] == (None, *theirs[1][1:3])


def test_native_plain_classes_name_neither_type_nor_object(load_fresh):
    class Plain:
        size = 2

    data = flightpickle.dumps(Plain)
    assert "builtins" not in pickletools_names(data)
    check = """
    result = (obj.size, obj.__bases__ == (object,), type(obj) is type, obj.__qualname__)
    """
    assert load_fresh(data, check) == (2, True, True, Plain.__qualname__)


def pickletools_names(data):
    return " ".join(str(arg) for op, arg, _ in pickletools.genops(data) if isinstance(arg, str))


def test_a_base_s_setstate_keeps_classes_on_class_setstate(load_fresh, protocol):
    # BUILD would call the inherited __setstate__ on the class itself.
    class Restoring:
        def __setstate__(self, state):
            self.restored = state

    class Child(Restoring):
        kind = "child"

    native = flightpickle.Pickler(io.BytesIO()).reducer_override(Child)
    assert len(native) == 6
    check = """
    child = obj()
    child.__setstate__(3)
    result = (obj.kind, child.restored)
    """
    assert load_fresh(flightpickle.dumps(Child, protocol=protocol), check) == ("child", 3)


def test_slot_class_instances_have_no_dict_after_loading(load_fresh, protocol):
    # cloudpickle gives loaded slot classes a __dict__; flightpickle does not.
    class Slotted:
        __slots__ = ("a", "__weakref__")

    item = Slotted()
    item.a = 1
    data = flightpickle.dumps(item, protocol=protocol)
    check = """
    import weakref
    weakref.ref(obj)
    result = (obj.a, hasattr(obj, '__dict__'))
    """
    assert load_fresh(data, check) == (1, False)


def test_class_pickled_again_after_loading_keeps_its_identity(load_fresh, run_python):
    shape, square = make_shapes()
    original = flightpickle.dumps(square)
    # A worker loads the class and pickles it (or an instance) again.
    again = run_python("""
    import pickle, sys, flightpickle
    Square = pickle.loads(sys.stdin.buffer.read())
    sys.stdout.buffer.write(flightpickle.dumps(Square(4)))
    """, stdin=original)
    payload = pickle.dumps((original, again))
    check = """
    import pickle
    Square = pickle.loads(obj[0])
    instance = pickle.loads(obj[1])
    result = (type(instance) is Square, instance.perimeter())
    """
    assert load_fresh(payload, check) == (True, 33)


def test_out_of_band_buffers_inside_a_dynamic_class(load_fresh):
    np = pytest.importorskip("numpy")

    class Holder:
        def __init__(self, array):
            self.array = array

        def total(self):
            return float(self.array.sum())

    buffers = []
    data = flightpickle.dumps(Holder(np.ones(1000)), protocol=5, buffer_callback=buffers.append)
    assert len(buffers) == 1
    loaded = pickle.loads(data, buffers=buffers)
    assert loaded.total() == 1000.0
    payload = pickle.dumps((data, [bytes(b.raw()) for b in buffers]))
    check = """
    import pickle
    holder = pickle.loads(obj[0], buffers=obj[1])
    result = holder.total()
    """
    assert load_fresh(payload, check) == 1000.0


def test_class_body_names_do_not_depend_on_interning():
    # A body name is written by its text, never found by identity: the
    # pickle is the same whether the str written before it is the class
    # dict's own (interned) key or an equal copy.
    class Holder:
        rate = 2.5

    interned = next(key for key in vars(Holder) if key == "rate")
    copy = "".join(["ra", "te"])
    assert copy is not interned
    assert flightpickle.dumps((interned, Holder)) == flightpickle.dumps((copy, Holder))


def test_enum_members_are_what_iterating_the_class_gives(load_fresh):
    # The standard iteration is read from the class's member tables; a
    # metaclass with an iteration of its own is asked for the members.
    class Shade(enum.Enum):
        DARK = 1
        LIGHT = 2
        DIM = 1

    class Backwards(enum.EnumMeta):
        def __iter__(cls):
            return reversed(list(super().__iter__()))

    class Tone(enum.Enum, metaclass=Backwards):
        DARK = 1
        LIGHT = 2

    check = """
    shade, tone = obj
    result = ([m.name for m in shade], shade.DIM is shade.DARK, shade(2).name,
              [m.name for m in tone])
    """
    data = flightpickle.dumps((Shade, Tone))
    assert load_fresh(data, check) == (["DARK", "LIGHT"], True, "LIGHT", ["LIGHT", "DARK"])


@pytest.mark.parametrize("target", ["native", "cloudpickle"])
def test_an_abc_registry_name_is_written_once_for_a_hierarchy(target):
    # The registry travels under the interned `_abc_impl`, which the C
    # pickler's identity memo finds again for the subclass.
    class Base(abc.ABC):
        @abc.abstractmethod
        def area(self): ...

    class Square(Base):
        def area(self):
            return 4

    with io.BytesIO() as file:
        flightpickle.Pickler(file, target=target).dump(Square)
        through_pickler = file.getvalue()
    assert through_pickler.count(b"_abc_impl") == 1
    assert flightpickle.dumps(Square, target=target).count(b"_abc_impl") == 1
