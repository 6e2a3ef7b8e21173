"""explain() shows what a UDF drags along, largest first, before anything is sent."""

from __future__ import annotations

import threading

import numpy as np
import pytest

import flightpickle


def test_large_capture_comes_first_with_its_size():
    model = np.zeros(1_000_000)  # 8 MB, captured by accident

    def helper(x):
        return x + 1

    def make(scale):
        def udf(x):
            return helper(x) * scale + model[0]

        return udf

    found = flightpickle.explain(make(3))
    assert found.by_value and found.name == "test_large_capture_comes_first_with_its_size.<locals>.make.<locals>.udf"
    first = found.captures[0]
    assert (first.kind, first.name, first.type) == ("closure", "model", "ndarray")
    assert 8_000_000 < first.bytes < 8_001_000
    kinds = {(c.kind, c.name) for c in found.captures}
    assert kinds == {("closure", "model"), ("closure", "helper"), ("closure", "scale")}
    assert next(c for c in found.captures if c.name == "helper").by_value
    assert found.total_bytes == len(flightpickle.dumps(make(3)))
    assert "ndarray" in str(found).splitlines()[1]


GLOBAL_TABLE = {n: str(n) for n in range(1000)}
UNUSED_GLOBAL = "never shipped"


def uses_a_global(key):
    return GLOBAL_TABLE[key]


def test_only_globals_the_code_uses_are_listed_with_defaults_and_attributes():
    def udf(key, default=(1, 2), *, fallback="x"):
        return uses_a_global(key) or GLOBAL_TABLE.get(key, default)

    udf.tag = "v1"
    found = flightpickle.explain(udf)
    listed = {(c.kind, c.name) for c in found.captures}
    assert listed == {
        ("global", "uses_a_global"),
        ("global", "GLOBAL_TABLE"),
        ("default", "#0"),
        ("keyword default", "fallback"),
        ("attribute", "tag"),
    }
    # A module-level function of an importable module travels by reference.
    assert not next(c for c in found.captures if c.name == "uses_a_global").by_value


def test_unpicklable_capture_is_named_not_raised():
    lock = threading.Lock()

    def udf():
        return lock

    found = flightpickle.explain(udf)
    assert found.total_bytes is None and "_thread.lock" in found.error
    assert found.captures[0].name == "lock" and found.captures[0].bytes is None
    assert "unpicklable" in str(found)


def test_importable_functions_ship_only_their_name():
    found = flightpickle.explain(uses_a_global)
    assert not found.by_value and found.captures == []


def test_classes_list_their_attributes():
    class Model:
        weights = list(range(10_000))

        def predict(self, x):
            return x

    found = flightpickle.explain(Model)
    assert [c.name for c in found.captures][:2] == ["weights", "predict"]


def test_other_objects_are_refused_with_advice():
    with pytest.raises(TypeError, match="pickle.dumps tells the size"):
        flightpickle.explain([1, 2, 3])
