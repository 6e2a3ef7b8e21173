"""Objects whose class defines ``__reduce__`` as a Python function and keeps
``object``'s ``__reduce_ex__`` (a ``Fraction``): the writer calls that
function with the object instead of ``obj.__reduce_ex__(protocol)``.

It may do so only where ``__reduce_ex__`` would end in that very call. Each
object here is dumped with the direct call and the old way (forced through
``_native.set_own_reduce_calls(False)``) and the bytes compared, and with
plain ``pickle`` where it can; where the direct call must not be taken, the
pickle also shows which reduction ran, so a wrong call fails either way.
"""

import copyreg
import pickle
from fractions import Fraction

import pytest

import flightpickle
from flightpickle import _native

PROTOCOLS = [2, 3, 4, 5]


def rebuild(*parts):
    """What the reductions under test name: their parts come back as given."""
    return ("rebuilt",) + parts


class Pair:
    __slots__ = ("a", "b")

    def __init__(self, a, b):
        self.a = a
        self.b = b

    def __reduce__(self):
        return rebuild, ("pair", self.a, self.b)


class PairWithReduceEx(Pair):
    __slots__ = ()

    def __reduce_ex__(self, protocol):
        return rebuild, ("reduce_ex", protocol)


class PairWithDict(Pair):
    """No `__slots__`: its instances have a dict."""


class ObjectReduceMeta(type):
    # A data descriptor: `type(obj).__reduce__` is `object.__reduce__`, so
    # `object.__reduce__ex__` reduces the default way and never calls the
    # class's own `__reduce__`.
    @property
    def __reduce__(cls):
        return object.__reduce__


class ObjectReduceThroughMeta(metaclass=ObjectReduceMeta):
    __slots__ = ("a",)

    def __init__(self, a):
        self.a = a

    def __reduce__(self):
        raise AssertionError("object.__reduce_ex__ does not call this")


class LookupMeta(type):
    # Its own attribute lookup: `type(obj).__reduce__` is what it says.
    def __getattribute__(cls, name):
        if name == "__reduce__":
            return object.__reduce__
        return super().__getattribute__(name)


class ObjectReduceThroughLookup(metaclass=LookupMeta):
    __slots__ = ("a",)

    def __init__(self, a):
        self.a = a

    def __reduce__(self):
        raise AssertionError("object.__reduce_ex__ does not call this")


class OwnLookup:
    __slots__ = ("a",)

    def __init__(self, a):
        self.a = a

    def __getattribute__(self, name):
        if name == "__reduce_ex__":
            return lambda protocol: (rebuild, ("own lookup", protocol))
        return object.__getattribute__(self, name)

    def __reduce__(self):
        return rebuild, ("class reduce",)


class StaticReduce:
    __slots__ = ()

    @staticmethod
    def __reduce__():
        return rebuild, ("static",)


class Refuses:
    __slots__ = ()

    def __reduce__(self):
        raise RuntimeError("not today")


class Returns:
    __slots__ = ("value",)

    def __init__(self, value):
        self.value = value

    def __reduce__(self):
        return self.value


def _dumps(obj, protocol, direct):
    was_on = _native.set_own_reduce_calls(direct)
    try:
        return flightpickle.dumps(obj, protocol=protocol)
    finally:
        _native.set_own_reduce_calls(was_on)


def _both_ways(obj, protocol):
    """The pickle with the direct call, checked equal to the old way's."""
    direct = _dumps(obj, protocol, True)
    assert direct == _dumps(obj, protocol, False)
    return direct


def _error_of(obj, direct):
    was_on = _native.set_own_reduce_calls(direct)
    try:
        with pytest.raises(Exception) as raised:
            flightpickle.dumps(obj)
    finally:
        _native.set_own_reduce_calls(was_on)
    return type(raised.value), str(raised.value)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_fractions_are_pickles_bytes(protocol):
    fractions = [Fraction(number, 7) for number in range(300)]
    assert _both_ways(fractions, protocol) == pickle.dumps(fractions, protocol=protocol)
    assert flightpickle.loads(_both_ways(fractions, protocol)) == fractions


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_shared_and_nested_objects(protocol):
    shared = Pair(1, "x")
    obj = [shared, Pair(shared, Fraction(1, 3)), shared, Pair([shared], None)]
    payload = _both_ways(obj, protocol)
    assert payload == pickle.dumps(obj, protocol=protocol)
    loaded = flightpickle.loads(payload)
    assert loaded[0] is loaded[2]
    assert loaded[1] == ("rebuilt", "pair", loaded[0], Fraction(1, 3))


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_subclass_overriding_reduce_ex_is_asked(protocol):
    payload = _both_ways([Pair(1, 2), PairWithReduceEx(1, 2)], protocol)
    assert flightpickle.loads(payload) == [("rebuilt", "pair", 1, 2), ("rebuilt", "reduce_ex", protocol)]


def test_reduce_ex_set_on_the_class_after_a_dump(monkeypatch):
    class Local(Pair):
        __slots__ = ()

    obj = Local(1, 2)
    assert flightpickle.loads(_both_ways(obj, 5)) == ("rebuilt", "pair", 1, 2)
    monkeypatch.setattr(Local, "__reduce_ex__", lambda self, protocol: (rebuild, ("set later", protocol)), raising=False)
    assert flightpickle.loads(_both_ways(obj, 5)) == ("rebuilt", "set later", 5)


def test_reduce_replaced_on_the_class_after_a_dump():
    class Local:
        __slots__ = ("a",)

        def __init__(self, a):
            self.a = a

        def __reduce__(self):
            return rebuild, ("first", self.a)

    obj = Local(1)
    assert flightpickle.loads(flightpickle.dumps(obj)) == ("rebuilt", "first", 1)
    Local.__reduce__ = lambda self: (rebuild, ("second", self.a))
    assert flightpickle.loads(_both_ways(obj, 5)) == ("rebuilt", "second", 1)
    # Replaced on a base the class inherits it from.
    class Derived(Local):
        __slots__ = ()

    derived = Derived(2)
    assert flightpickle.loads(flightpickle.dumps(derived)) == ("rebuilt", "second", 2)
    Local.__reduce__ = lambda self: (rebuild, ("third", self.a))
    assert flightpickle.loads(_both_ways(derived, 5)) == ("rebuilt", "third", 2)


def test_a_copyreg_entry_added_after_a_dump(monkeypatch):
    obj = Pair(1, 2)
    assert flightpickle.loads(flightpickle.dumps(obj)) == ("rebuilt", "pair", 1, 2)
    monkeypatch.setitem(copyreg.dispatch_table, Pair, lambda pair: (rebuild, ("table", pair.a)))
    payload = _both_ways(obj, 5)
    assert payload == pickle.dumps(obj, protocol=5)
    assert flightpickle.loads(payload) == ("rebuilt", "table", 1)


@pytest.mark.parametrize("name", ["__reduce__", "__reduce_ex__"])
def test_instance_attributes_win_over_the_class(name):
    obj = PairWithDict(1, 2)
    plain = PairWithDict(3, 4)
    if name == "__reduce__":
        setattr(obj, name, lambda: (rebuild, ("instance",)))
    else:
        setattr(obj, name, lambda protocol: (rebuild, ("instance", protocol)))
    payload = _both_ways([obj, plain], 5)
    assert payload == pickle.dumps([obj, plain], protocol=5)
    expected = ("rebuilt", "instance") if name == "__reduce__" else ("rebuilt", "instance", 5)
    assert flightpickle.loads(payload) == [expected, ("rebuilt", "pair", 3, 4)]


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("kind", [ObjectReduceThroughMeta, ObjectReduceThroughLookup], ids=["descriptor", "lookup"])
def test_a_metaclass_giving_objects_reduce_means_the_default_reduction(kind, protocol):
    obj = kind(7)
    payload = _both_ways(obj, protocol)
    assert payload == pickle.dumps(obj, protocol=protocol)
    loaded = flightpickle.loads(payload)
    assert type(loaded) is kind and loaded.a == 7


def test_a_class_with_its_own_attribute_lookup():
    payload = _both_ways(OwnLookup(1), 5)
    assert flightpickle.loads(payload) == ("rebuilt", "own lookup", 5)


def test_a_reduce_that_is_not_a_function():
    payload = _both_ways(StaticReduce(), 5)
    assert flightpickle.loads(payload) == ("rebuilt", "static")


@pytest.mark.parametrize(
    "obj",
    [
        [Refuses()],
        {"a": [Returns(42)]},
        [Returns((rebuild,))],
        [Returns((rebuild, ("a",), None, None, None, None, None))],
        [Returns((rebuild, "not a tuple"))],
        [Returns((42, ()))],
    ],
    ids=["raises", "not a tuple", "one item", "seven items", "arguments not a tuple", "not callable"],
)
def test_errors_are_those_of_the_old_way(obj):
    assert _error_of(obj, True) == _error_of(obj, False)


def test_an_error_names_the_path():
    error_type, message = _error_of({"rows": [Pair(1, 2), Refuses()]}, True)
    assert issubclass(error_type, pickle.PicklingError) and issubclass(error_type, RuntimeError)
    assert message == "Could not pickle obj['rows'][1]: not today"


SINGLETON = Returns("SINGLETON")


def test_a_global_name_as_the_reduction():
    payload = _both_ways([SINGLETON], 5)
    assert payload == pickle.dumps([SINGLETON], protocol=5)
    assert flightpickle.loads(payload) == [SINGLETON]


@pytest.mark.parametrize("depth", [500, 5_000])
def test_deep_chains(depth):
    chain = None
    for number in range(depth):
        chain = Pair(number, chain)
    try:
        direct = ("pickled", _dumps(chain, 5, True))
    except Exception as error:  # noqa: BLE001 - compared with the old way's below
        direct = ("raised", type(error), str(error))
    try:
        old = ("pickled", _dumps(chain, 5, False))
    except Exception as error:  # noqa: BLE001
        old = ("raised", type(error), str(error))
    assert direct == old
