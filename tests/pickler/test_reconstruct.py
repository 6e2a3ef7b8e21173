"""The reconstructors are a wire format: the names pickles refer to, as
`flightpickle._<name>` and, in pickles of earlier releases, as
`flightpickle._reconstruct.<name>`."""

import enum
import pickle
import sys
import types

import pytest

import flightpickle
from flightpickle import _reconstruct
from support import load_finding

# Every name a pickle may refer to. Removing or renaming one breaks pickles
# already written: this list only ever grows.
WIRE_NAMES = {
    "builtin_type", "class_setstate", "dynamic_subimport", "file_reconstructor", "function_setstate",
    "get_dataclass_field_type_sentinel", "make_cell", "make_dict_items", "make_dict_keys",
    "make_dict_values", "make_empty_cell", "make_function", "make_newtype", "make_paramspec",
    "make_skeleton_class", "make_skeleton_enum", "make_typevar", "make_typevartuple", "subimport",
    "new_function", "fill_function", "make_descriptor", "make_dataclass_part",
    "builtins_class",
}


def test_wire_names_are_all_present():
    public = {name for name in vars(_reconstruct) if not name.startswith("_")}
    assert public == WIRE_NAMES


@pytest.mark.parametrize("name", sorted(WIRE_NAMES))
def test_reconstructors_are_found_by_pickle_under_their_wire_name(name):
    func = getattr(_reconstruct, name)
    assert getattr(flightpickle, f"_{name}") is func
    assert func.__module__ == "flightpickle"
    assert func.__qualname__ == f"_{name}"
    assert pickle.loads(pickle.dumps(func)) is func
    assert pickle.loads(b"cflightpickle._reconstruct\n" + name.encode() + b"\n.") is func


def globals_named(obj, protocol):
    return set(load_finding(flightpickle.dumps(obj, protocol=protocol))[1])


def test_pickles_name_only_reconstructors_and_the_stdlib(protocol):
    class Kind(enum.Enum):
        A = 1

    class Thing:
        def method(self):
            return types.CellType

    sample = [lambda: Thing, Kind.A, Thing(), types.ModuleType("m"), {}.keys()]
    modules = {module for module, _ in globals_named(sample, protocol)}
    # Protocol 2 spells builtins the Python 2 way and bytes through _codecs.
    stdlib = {"builtins", "__builtin__", "_codecs", "enum", "copyreg", "types"}
    assert modules <= stdlib | {"flightpickle"}
    assert not any(module.startswith("cloudpickle") for module in modules)


def test_fresh_loader_does_not_need_cloudpickle(load_fresh):
    data = flightpickle.dumps(lambda: 1)
    check = "import sys; result = (obj(), sorted(m for m in sys.modules if 'cloudpickle' in m))"
    assert load_fresh(data, check) == (1, [])


@pytest.mark.parametrize("call, error, message", [
    (lambda: _reconstruct.builtin_type("NoSuchType"), AttributeError, "NoSuchType"),
    (lambda: _reconstruct.builtin_type("new_class"), ValueError, "not a class"),
    (lambda: _reconstruct.get_dataclass_field_type_sentinel("x"), ValueError, "unknown dataclass field marker"),
    (lambda: _reconstruct.function_setstate(lambda: 1, (1, 2)), TypeError, "not an instance of .dict."),
    (lambda: _reconstruct.function_setstate((lambda: 1), ({}, {"__closure__": (types.CellType(1),)})),
     ValueError, "closure size"),
    (lambda: _reconstruct.make_skeleton_enum((), "E", "E", {}, "m", None), ValueError, "at least one base"),
])
def test_bad_input_to_reconstructors_raises_python_errors(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_corrupted_pickle_raises_unpickling_error():
    data = flightpickle.dumps(lambda x: x)
    for cut in (5, len(data) // 2, len(data) - 1):
        with pytest.raises((pickle.UnpicklingError, EOFError, ValueError, TypeError)):
            pickle.loads(data[:cut])


def test_subimport_returns_the_module_in_sys_modules():
    import json

    assert _reconstruct.subimport("json") is json


def test_subimport_imports_a_module_not_yet_imported(monkeypatch):
    import sys

    # A stdlib module nothing else here imports, taken out for the test.
    monkeypatch.delitem(sys.modules, "colorsys", raising=False)
    module = _reconstruct.subimport("colorsys")
    assert module is sys.modules["colorsys"]
    assert module.rgb_to_hsv(1.0, 0.0, 0.0) == (0.0, 1.0, 1.0)


def test_subimport_returns_modules_whose_spec_has_no_initializing_flag():
    # Set up before importlib: their specs never had `_initializing`.
    assert not hasattr(sys.__spec__, "_initializing")
    assert _reconstruct.subimport("sys") is sys
    assert _reconstruct.subimport("builtins") is sys.modules["builtins"]


def test_subimport_returns_a_module_subclass_or_a_module_without_spec(monkeypatch):
    class Lazy(types.ModuleType):
        pass

    lazy, bare = Lazy("flightpickle_lazy_module"), types.ModuleType("flightpickle_bare_module")
    monkeypatch.setitem(sys.modules, lazy.__name__, lazy)
    monkeypatch.setitem(sys.modules, bare.__name__, bare)
    assert _reconstruct.subimport(lazy.__name__) is lazy
    assert _reconstruct.subimport(bare.__name__) is bare


def test_subimport_waits_for_a_module_another_thread_is_initialising(monkeypatch):
    import importlib._bootstrap
    import importlib.machinery
    import threading

    name = "flightpickle_module_being_imported"
    module = types.ModuleType(name)
    module.__spec__ = importlib.machinery.ModuleSpec(name, None)
    module.__spec__._initializing = True
    in_sys_modules, finish = threading.Event(), threading.Event()
    seen = {}

    def import_system():
        # What the import system does for a module it runs: the module's
        # lock held, the module in sys.modules, its spec initialising.
        with importlib._bootstrap._ModuleLockManager(name):
            sys.modules[name] = module
            in_sys_modules.set()
            finish.wait(10)
            module.ready = True
            module.__spec__._initializing = False

    def loader():
        found = _reconstruct.subimport(name)
        seen["module"], seen["ready"] = found, getattr(found, "ready", False)

    monkeypatch.delitem(sys.modules, name, raising=False)
    importing = threading.Thread(target=import_system)
    importing.start()
    try:
        assert in_sys_modules.wait(10)
        loading = threading.Thread(target=loader)
        loading.start()
        loading.join(0.3)
        assert loading.is_alive(), "subimport returned a module still initialising"
    finally:
        finish.set()
        importing.join(10)
    loading.join(10)
    sys.modules.pop(name, None)
    assert seen == {"module": module, "ready": True}


def test_subimport_of_a_missing_module_raises_module_not_found():
    with pytest.raises(ModuleNotFoundError):
        _reconstruct.subimport("flightpickle_no_such_module")


def test_subimport_does_not_accept_a_none_placeholder(monkeypatch):
    import sys

    # None in sys.modules blocks an import; import raises, so must we.
    monkeypatch.setitem(sys.modules, "flightpickle_blocked_module", None)
    with pytest.raises(ImportError):
        _reconstruct.subimport("flightpickle_blocked_module")


def fresh_str(text):
    """An equal str that is not the interned one."""
    return "".join(list(text))


@pytest.mark.parametrize("metaclass", [None, type])
def test_a_plain_skeleton_class_is_made_by_type(metaclass):
    class Base:
        pass

    key = fresh_str("attribute_key")
    made = _reconstruct.make_skeleton_class(
        metaclass, "Thing", (Base,), {"__module__": "m", "__qualname__": "Outer.Thing", key: 5}, None)
    assert type(made) is type
    assert made.__bases__ == (Base,)
    assert (made.__module__, made.__qualname__, made.attribute_key) == ("m", "Outer.Thing", 5)
    assert "__orig_bases__" not in made.__dict__
    # Interned as a class body's names are, whatever object the pickle made.
    stored = next(name for name in made.__dict__ if name == "attribute_key")
    assert stored is sys.intern("attribute_key")


def test_a_skeleton_class_with_no_bases_derives_from_object():
    made = _reconstruct.make_skeleton_class(None, "Thing", (), {}, None)
    assert made.__bases__ == (object,)


def test_a_skeleton_class_takes_its_metaclass_from_its_bases():
    import abc

    class Base(abc.ABC):
        pass

    made = _reconstruct.make_skeleton_class(None, "Thing", (Base,), {}, None)
    assert type(made) is abc.ABCMeta
    assert issubclass(made, Base)


def test_a_skeleton_class_resolves_bases_that_are_not_classes():
    import typing

    T = typing.TypeVar("T")
    bases = (typing.Generic[T],)
    made = _reconstruct.make_skeleton_class(None, "Box", bases, {}, None)
    assert made.__bases__ == (typing.Generic,)
    assert made.__orig_bases__ == bases
    assert made[int] is not None


def test_skeleton_class_names_of_a_str_subclass_become_plain_strs():
    class Name(str):
        pass

    made = _reconstruct.make_skeleton_class(None, "Thing", (), {Name("label"): 1}, None)
    stored = next(name for name in made.__dict__ if name == "label")
    assert type(stored) is str
    assert made.label == 1


@pytest.mark.parametrize("name", ["_FIELD", "_FIELD_CLASSVAR", "_FIELD_INITVAR"])
def test_dataclass_field_markers_are_the_dataclasses_module_objects(name):
    import dataclasses

    assert _reconstruct.get_dataclass_field_type_sentinel(name) is getattr(dataclasses, name)
