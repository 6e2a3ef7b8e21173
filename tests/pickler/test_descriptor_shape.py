"""The native writer's shape for the descriptors of a class body: one
reconstructor, `make_descriptor(kind, *parts)`, makes staticmethods,
classmethods and properties, so a pickle names one global for all three
instead of one `builtins` name each. The other targets keep cloudpickle's
shape (the wrapper types named as globals)."""

import abc
import io
import pickle

import pytest

import flightpickle
from flightpickle import _reconstruct
from support import load_finding


def names_found(data):
    return [f"{module}.{name}" for module, name in load_finding(data)[1]]


def make_tool():
    class Tool:
        def __init__(self):
            self._size = 1

        @property
        def size(self):
            """The size."""
            return self._size

        @size.setter
        def size(self, value):
            self._size = value

        @size.deleter
        def size(self):
            self._size = 0

        @classmethod
        def named(cls):
            return cls.__name__

        @staticmethod
        def unit():
            return "cm"

        read_only = property(lambda self: self._size * 10)

    return Tool


def test_a_class_body_names_one_reconstructor_for_its_descriptors(protocol):
    found = names_found(flightpickle.dumps(make_tool(), protocol=protocol))
    assert found.count("flightpickle._make_descriptor") == 1
    wrappers = {"property", "classmethod", "staticmethod"}
    assert not [name for name in found if name.split(".")[-1] in wrappers]


def test_descriptors_load_with_their_parts(load_fresh, protocol):
    data = flightpickle.dumps(make_tool(), protocol=protocol)
    check = """
    tool = obj()
    tool.size = 5
    before_delete = tool.size
    del tool.size
    kinds = {name: type(vars(obj)[name]).__name__ for name in ("size", "named", "unit", "read_only")}
    result = (before_delete, tool.size, obj.size.__doc__, obj.named(), obj.unit(), tool.read_only,
              obj.read_only.fset, obj.read_only.__doc__, kinds)
    """
    kinds = {"size": "property", "named": "classmethod", "unit": "staticmethod", "read_only": "property"}
    assert load_fresh(data, check) == (5, 0, "The size.", "Tool", "cm", 0, None, None, kinds)


@pytest.mark.parametrize("target", ["cloudpickle", "pyspark"])
def test_other_targets_name_the_wrapper_types(target):
    found = names_found(flightpickle.dumps(make_tool(), target=target))
    assert {"builtins.property", "builtins.classmethod", "builtins.staticmethod"} <= set(found)
    assert not any(name.endswith("make_descriptor") for name in found)


class OwnReducerOverride(flightpickle.Pickler):
    # A reducer_override of its own: Pickler.dump is then the C pickler's
    # (plain Pickler.dump is the native writer's, as module-level dumps).
    def reducer_override(self, obj):
        return super().reducer_override(obj)


def test_the_c_pickler_keeps_the_wrapper_types():
    buffer = io.BytesIO()
    OwnReducerOverride(buffer).dump(make_tool())
    found = names_found(buffer.getvalue())
    assert {"builtins.property", "builtins.classmethod", "builtins.staticmethod"} <= set(found)
    assert pickle.loads(buffer.getvalue()).unit() == "cm"


def test_a_descriptor_its_function_refers_to_is_one_object():
    def helper():
        return 1

    wrapped = staticmethod(helper)
    helper.wrapper = wrapped
    loaded = pickle.loads(flightpickle.dumps(wrapped))
    assert type(loaded) is staticmethod
    assert loaded.__func__.wrapper is loaded
    assert loaded.__func__() == 1


def test_abc_descriptor_variants_keep_their_earlier_shape(load_fresh):
    # Not the exact wrapper types: written as before, through the reducer table.
    class Holder:
        old = abc.abstractproperty(lambda self: 4)
        made = abc.abstractclassmethod(lambda cls: cls.__name__)

    data = flightpickle.dumps(Holder)
    assert "abc.abstractclassmethod" in names_found(data)
    check = """
    result = (type(vars(obj)["old"]).__name__, obj().old, type(vars(obj)["made"]).__name__, obj.made())
    """
    # An abstractproperty comes back as a plain property, as in cloudpickle.
    assert load_fresh(data, check) == ("property", 4, "abstractclassmethod", "Holder")


@pytest.mark.parametrize("call, error, message", [
    (lambda: _reconstruct.make_descriptor(3, len), ValueError, "unknown descriptor kind 3"),
    (lambda: _reconstruct.make_descriptor(-1, len), ValueError, "unknown descriptor kind -1"),
    (lambda: _reconstruct.make_descriptor(2**70, len), ValueError, "unknown descriptor kind"),
    (lambda: _reconstruct.make_descriptor("property", len), TypeError, "must be an int, not str"),
    (lambda: _reconstruct.make_descriptor(1, len, len), TypeError, "classmethod"),
    (lambda: _reconstruct.make_descriptor(2, len, len, len, "doc", "extra"), TypeError, "property"),
])
def test_bad_input_to_make_descriptor_raises_python_errors(call, error, message):
    with pytest.raises(error, match=message):
        call()


@pytest.mark.parametrize("kind, wrapper", [(0, staticmethod), (1, classmethod), (2, property)])
def test_kind_codes_are_the_wire_format(kind, wrapper):
    made = _reconstruct.make_descriptor(kind, len)
    assert type(made) is wrapper


@pytest.mark.parametrize("wrapper", [staticmethod, classmethod, property])
def test_inspection_names_the_wrapper_the_loader_calls(wrapper):
    # The Rust inspector reads the kind codes that the writer writes: the
    # two must agree, or a policy would see the wrong builtin called.
    from flightpickle.inspection import inspect_payload

    def helper():
        return 1

    calls = inspect_payload(flightpickle.dumps(wrapper(helper))).calls
    others = {staticmethod, classmethod, property} - {wrapper}
    assert calls["flightpickle._make_descriptor"] == 1
    assert calls[f"builtins.{wrapper.__name__}"] == 1
    assert not any(f"builtins.{other.__name__}" in calls for other in others)
