"""The other kinds cloudpickle handles; results compared with cloudpickle's."""

import abc
import collections
import dataclasses
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
