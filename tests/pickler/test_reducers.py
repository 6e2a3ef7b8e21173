"""The other kinds cloudpickle handles; results compared with cloudpickle's."""

import abc
import collections
import dataclasses
import functools
import io
import logging
import pickle
import types
import typing
import weakref

import cloudpickle
import pytest

import flightpickle


def round_trip(obj, protocol=5):
    return pickle.loads(flightpickle.dumps(obj, protocol=protocol))


def pickler_dumps(obj, protocol):
    """What the subclassable `Pickler` writes (the C pickler and our table)."""
    out = io.BytesIO()
    flightpickle.Pickler(out, protocol=protocol).dump(obj)
    return out.getvalue()


def test_cells(protocol):
    full = types.CellType([1, 2])
    holding_none = types.CellType(None)
    empty = types.CellType()
    full2, none2, empty2 = round_trip((full, holding_none, empty), protocol)
    assert full2.cell_contents == [1, 2]
    assert none2.cell_contents is None
    with pytest.raises(ValueError):
        empty2.cell_contents


def test_code_object(load_fresh, protocol):
    code = (lambda a, *, b=2: a + b).__code__
    data = flightpickle.dumps(code, protocol=protocol)
    check = """
    import types
    f = types.FunctionType(obj, {})
    result = (f(1, b=3), obj.co_varnames, obj.co_name, obj.co_firstlineno)
    """
    assert load_fresh(data, check) == (4, ("a", "b"), "<lambda>", code.co_firstlineno)


def test_descriptors_and_methods(protocol):
    class Holder:
        def method(self):
            return "bound"

    holder = Holder()
    prop = property(lambda self: 1, doc="doc")
    cm = classmethod(lambda cls: cls)
    sm = staticmethod(lambda: "static")
    getset = types.FunctionType.__dict__["__code__"]
    assert type(getset) is types.GetSetDescriptorType
    prop2, cm2, sm2, bound, gs = round_trip((prop, cm, sm, holder.method, getset), protocol)
    assert prop2.__doc__ == "doc" and prop2.fget(None) == 1
    assert type(cm2) is classmethod and type(sm2) is staticmethod and sm2.__func__() == "static"
    assert bound() == "bound"
    assert gs is getset


def test_views_and_containers(protocol):
    plain = {"a": 1, "b": 2}
    ordered = collections.OrderedDict(x=1, y=2)
    items = (plain.keys(), plain.values(), plain.items(), ordered.keys(), ordered.values(),
             ordered.items(), types.MappingProxyType({"k": 1}), memoryview(b"abc"))
    keys, values, pairs, okeys, ovalues, opairs, proxy, view = round_trip(items, protocol)
    assert list(keys) == ["a", "b"] and list(values) == [1, 2] and dict(pairs) == plain
    assert list(okeys) == ["x", "y"] and list(ovalues) == [1, 2] and list(opairs) == [("x", 1), ("y", 2)]
    assert type(okeys) is type(ordered.keys())
    assert type(proxy) is types.MappingProxyType and proxy["k"] == 1
    assert view == b"abc"


def test_weakset_and_loggers(protocol):
    class Item:
        pass

    keep = [Item(), Item()]
    weak = weakref.WeakSet(keep)
    (weak2, _), logger, root = round_trip(([weak, keep], logging.getLogger("fp.test"), logging.getLogger()), protocol)
    assert isinstance(weak2, weakref.WeakSet) and len(weak2) == 2
    assert logger is logging.getLogger("fp.test") and root is logging.getLogger()


def test_typevars(load_fresh, protocol):
    T = typing.TypeVar("T", bound=int)
    assert round_trip(typing.AnyStr, protocol) is typing.AnyStr
    data = flightpickle.dumps((T, T), protocol=protocol)
    check = "result = (obj[0] is obj[1], obj[0].__name__, obj[0].__bound__ is int)"
    assert load_fresh(data, check) == (True, "T", True)


def test_dataclass_field_markers_keep_identity():
    for marker in (dataclasses._FIELD, dataclasses._FIELD_CLASSVAR, dataclasses._FIELD_INITVAR):
        assert round_trip(marker) is marker


def test_dataclass_sentinels_keep_identity(protocol):
    for sentinel in (dataclasses.MISSING, dataclasses.KW_ONLY):
        assert round_trip(sentinel, protocol) is sentinel
        assert pickle.loads(pickler_dumps(sentinel, protocol)) is sentinel


def test_other_instances_of_dataclass_sentinel_classes_keep_their_reduction(protocol):
    # Such as the ones an older pickle of a dataclass made.
    other = dataclasses._MISSING_TYPE()
    for loaded in (round_trip(other, protocol), pickle.loads(pickler_dumps(other, protocol))):
        assert type(loaded) is dataclasses._MISSING_TYPE and loaded is not dataclasses.MISSING


def test_abstract_descriptors(protocol):
    class Base(abc.ABC):
        @abc.abstractproperty
        def prop(self):
            ...

    prop = round_trip(Base.__dict__["prop"], protocol)
    assert type(prop) is property


def test_ellipsis_and_notimplemented(protocol):
    assert round_trip((Ellipsis, NotImplemented), protocol) == (Ellipsis, NotImplemented)


@pytest.mark.parametrize("make", [
    lambda: types.CellType(3),
    lambda: {"a": 1}.items(),
    lambda: types.MappingProxyType({"z": [1]}),
    lambda: property(abs),
    lambda: typing.TypeVar("U", str, bytes),
])
def test_reducers_agree_with_cloudpickle(make, protocol):
    obj = make()
    ours = flightpickle.Pickler.dispatch_table[type(obj)](obj)
    theirs = cloudpickle.Pickler.dispatch_table[type(obj)](obj)
    assert ours[0].__name__.lstrip("_") == theirs[0].__name__.lstrip("_")
    assert len(ours[1]) == len(theirs[1])
    ours_loaded = round_trip(obj, protocol)
    theirs_loaded = pickle.loads(cloudpickle.dumps(obj, protocol=protocol))
    assert repr(ours_loaded).split(" at ")[0] == repr(theirs_loaded).split(" at ")[0]


def other_kinds():
    class Holder:
        __slots__ = ("value",)

        def method(self):
            return "bound"

    holder = Holder()
    holder.value = 5
    data = {"k": 1, "j": 2}
    return (memoryview(b"mv"), str.upper, functools.partial.__dict__["func"], [7].append,
            b"ab".hex, object.__init__, (4).__add__, holder.method, len, Ellipsis, NotImplemented,
            type(Ellipsis), type(NotImplemented), types.MappingProxyType({"m": 1}), data.keys(),
            data.values(), data.items(), types.FunctionType.__dict__["__globals__"], holder)


OTHER_KINDS_CHECK = """
import types
(mv, upper, member, append, hexer, init, add, method, len_, ell, ni, ell_t, ni_t,
 proxy, keys, values, items, globals_member, holder) = obj
append(8)
result = (mv, upper("a"), type(member).__name__, member.__objclass__.__name__, member.__name__,
          append.__self__,
          hexer(), init is object.__init__, add(1), method(), method.__self__ is holder,
          len_ is len, ell is Ellipsis, ni is NotImplemented, ell_t is type(...),
          ni_t is type(NotImplemented), type(proxy).__name__, dict(proxy), list(keys), list(values),
          list(items), globals_member is types.FunctionType.__dict__["__globals__"])
"""


def test_other_kinds_load_fresh_as_with_cloudpickle(load_fresh, protocol):
    ours = load_fresh(flightpickle.dumps(other_kinds(), protocol=protocol), OTHER_KINDS_CHECK)
    theirs = load_fresh(cloudpickle.dumps(other_kinds(), protocol=protocol), OTHER_KINDS_CHECK)
    assert ours == theirs
    assert ours == (b"mv", "A", "member_descriptor", "partial", "func", [7, 8], "6162", True, 5,
                    "bound", True, True, True, True, True, True, "mappingproxy", {"m": 1}, ["k", "j"],
                    [1, 2], [("k", 1), ("j", 2)], True)


def test_slot_member_of_a_dynamic_class(load_fresh, protocol):
    # Beyond cloudpickle, whose class skeletons get their slots too late
    # for `getattr(cls, slot)` to find the member.
    class Holder:
        __slots__ = ("value",)

    holder = Holder()
    holder.value = 5
    data = flightpickle.dumps((Holder.__dict__["value"], holder), protocol=protocol)
    check = "member, holder = obj; result = (member.__get__(holder), member.__objclass__ is type(holder))"
    assert load_fresh(data, check) == (5, True)


def test_builtins_are_the_loading_interpreter_s(load_fresh, protocol):
    module = types.ModuleType("made_at_run_time")
    exec("def total(xs):\n    return sum(xs)\n", module.__dict__)
    data = flightpickle.dumps((lambda xs: max(xs), module.total, module), protocol=protocol)
    check = """
    import builtins
    lam, total, module = obj
    result = (lam([1, 3]), total([1, 3]), lam.__globals__['__builtins__'] is builtins.__dict__,
              total.__globals__['__builtins__'] is builtins.__dict__,
              module.__dict__['__builtins__'] is builtins.__dict__)
    """
    assert load_fresh(data, check) == (3, 4, True, True, True)


def test_weakset_loggers_and_cells_load_fresh(load_fresh, protocol):
    class Item:
        pass

    keep = [Item(), Item()]
    objects = ([weakref.WeakSet(keep), keep], logging.getLogger("fp.fresh"), logging.getLogger(),
               types.CellType(keep), types.CellType())
    check = """
    import logging, weakref
    (weak, keep), logger, root, full, empty = obj
    try:
        empty.cell_contents
        empty_stays_empty = False
    except ValueError:
        empty_stays_empty = True
    result = (type(weak) is weakref.WeakSet, sorted(map(id, weak)) == sorted(map(id, keep)),
              logger is logging.getLogger("fp.fresh"), root is logging.getLogger(),
              full.cell_contents is keep, empty_stays_empty)
    """
    expected = (True, True, True, True, True, True)
    assert load_fresh(flightpickle.dumps(objects, protocol=protocol), check) == expected
    assert load_fresh(cloudpickle.dumps(objects, protocol=protocol), check) == expected
