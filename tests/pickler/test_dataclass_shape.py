"""The native writer's shapes inside by-value parts: a dataclass's `Field`s
and `_DataclassParams` made by one call each from their slot values
(`make_dataclass_part`), and builtin classes found by `builtins_class(name)`
instead of the global `builtins.<name>`, which the unpickler finds at twice
the cost of another module's names. Plain data and the other targets keep
pickle's and cloudpickle's shapes."""

import dataclasses
import pickle
import typing

import cloudpickle
import pytest

import flightpickle
from flightpickle import _reconstruct
from support import load_finding


def names_found(data):
    return [f"{module}.{name}" for module, name in load_finding(data)[1]]


def make_order():
    @dataclasses.dataclass(order=True, frozen=True)
    class Order:
        item: str
        quantity: int = 1
        tags: list = dataclasses.field(default_factory=list, compare=False, metadata={"unit": "pcs"})
        count: typing.ClassVar[int] = 0
        scale: dataclasses.InitVar[float] = 1.0

        def __post_init__(self, scale):
            object.__setattr__(self, "quantity", int(self.quantity * scale))

    return Order


def field_summary(field):
    return (field.name, field.type, field.default, field.default_factory, field.init, field.repr,
            field.hash, field.compare, dict(field.metadata), field.kw_only, field._field_type)


def test_fields_and_params_load_as_dataclasses_made_them():
    order = make_order()
    loaded = flightpickle.loads(flightpickle.dumps(order))
    assert [field_summary(f) for f in loaded.__dataclass_fields__.values()] == [
        field_summary(f) for f in order.__dataclass_fields__.values()
    ]
    assert repr(loaded.__dataclass_params__) == repr(order.__dataclass_params__)
    assert loaded("pen", 2, scale=2.0) == loaded("pen", 4)
    assert loaded("a") < loaded("b")
    assert dataclasses.replace(loaded("pen"), quantity=3).quantity == 3


def test_markers_sentinels_and_empty_metadata_keep_their_identity():
    order = flightpickle.loads(flightpickle.dumps(make_order()))
    fields = order.__dataclass_fields__
    assert fields["item"]._field_type is dataclasses._FIELD
    assert fields["count"]._field_type is dataclasses._FIELD_CLASSVAR
    assert fields["scale"]._field_type is dataclasses._FIELD_INITVAR
    assert fields["item"].default is dataclasses.MISSING
    assert fields["item"].metadata is dataclasses._EMPTY_METADATA
    assert fields["tags"].metadata == {"unit": "pcs"} and type(fields["tags"].metadata) is type(fields["item"].metadata)


def test_the_pickle_names_the_part_maker_not_the_dataclasses_classes():
    found = names_found(flightpickle.dumps(make_order()))
    assert "flightpickle._make_dataclass_part" in found
    assert not {"dataclasses.Field", "dataclasses._DataclassParams", "copyreg.__newobj__",
                "dataclasses.MISSING"} & set(found)
    assert "flightpickle._get_dataclass_field_type_sentinel" not in found


def test_other_targets_keep_the_default_reduction():
    data = flightpickle.dumps(make_order(), target="cloudpickle")
    assert "flightpickle" not in str(names_found(data))
    order = cloudpickle.loads(data)
    assert order("pen").quantity == 1


def test_a_field_outside_a_class_keeps_the_default_reduction():
    # Not yet named or given a kind: no marker to send by name.
    field = dataclasses.field(default=5)
    loaded = flightpickle.loads(flightpickle.dumps(field))
    assert (loaded.default, loaded.name, loaded._field_type) == (5, None, None)
    assert "flightpickle._make_dataclass_part" not in names_found(flightpickle.dumps(field))


@pytest.mark.parametrize(
    "arguments, message",
    [
        (("Other", (), ()), 'unknown dataclass part "Other"'),
        (("Field", ("name",), ()), "a value for each of its 1 slot names, got 0"),
        (("Field", (1,), (2,)), "slot names must be str"),
        (("Field", ("_field_type",), ("_ELSEWHERE",)), 'unknown dataclass field marker "_ELSEWHERE"'),
        (("Field", ("_field_type",), (3,)), "travels as its name"),
        (("Field", ("default",), (None,), 2), "missing slots 0x2 are not among its 1 slots"),
    ],
)
def test_malformed_parts_are_refused_with_a_message(arguments, message):
    with pytest.raises((TypeError, ValueError), match=message):
        _reconstruct.make_dataclass_part(*arguments)


def test_missing_bits_make_missing_slots():
    field = _reconstruct.make_dataclass_part("Field", ("default", "default_factory", "init"), (None, None, True), 0b10)
    assert (field.default, field.default_factory, field.init) == (None, dataclasses.MISSING, True)


def test_a_slot_the_class_does_not_have_fails_as_setattr_does():
    with pytest.raises(AttributeError):
        _reconstruct.make_dataclass_part("_DataclassParams", ("no_such_slot",), (1,))


def annotated(x: float, flag: bool = False) -> str:
    return str(x)


def test_builtin_classes_inside_by_value_parts_are_found_by_the_reconstructor():
    flightpickle.register_pickle_by_value(__import__(__name__))
    try:
        data = flightpickle.dumps(annotated)
    finally:
        flightpickle.unregister_pickle_by_value(__import__(__name__))
    found = names_found(data)
    assert not [name for name in found if name.startswith("builtins.")], found
    assert "flightpickle._builtins_class" in found
    loaded = flightpickle.loads(data)
    assert loaded.__annotations__ == {"x": float, "flag": bool, "return": str}
    assert loaded(1.5) == "1.5"


def test_builtin_classes_in_plain_data_stay_globals():
    # Plain data keeps pickle's bytes: it loads where flightpickle is not.
    value = [float, complex(1, 2)]
    assert flightpickle.dumps(value, protocol=5) == pickle.dumps(value, protocol=5)


@pytest.mark.parametrize(
    "name, message",
    [("eval", "builtins.eval is not a class"), ("no_such_class", "builtins has no no_such_class")],
)
def test_builtins_class_hands_out_classes_only(name, message):
    with pytest.raises(ValueError, match=message):
        _reconstruct.builtins_class(name)
    assert _reconstruct.builtins_class("float") is float


def test_inspection_lists_a_builtin_class_found_by_the_reconstructor():
    # The Rust inspector must see builtins_class('float') as the global it
    # stands for, or a policy on modules or globals would miss it.
    from flightpickle.inspection import inspect_payload

    def typed(x: float) -> str:
        return str(x)

    found = inspect_payload(flightpickle.dumps(typed))
    assert found.globals["builtins.float"] == 1 and found.globals["builtins.str"] == 1
    assert "builtins" in found.modules
    assert found.calls["flightpickle._builtins_class"] == 2
