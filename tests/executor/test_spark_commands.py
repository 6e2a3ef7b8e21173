"""PySpark UDF commands, ``(func, returnType)``, as the Spark plugin's operators
send them: the service evaluates the command's function."""

from __future__ import annotations

import pyarrow as pa
import pytest
from pyspark.sql.types import LongType

import flightpickle.executor as executor
from flightpickle.executor import spark_commands

pytestmark = pytest.mark.timeout(120)


def add_one(x):
    return x + 1


def test_a_command_stands_for_its_function():
    assert spark_commands.function_of((add_one, LongType())) is add_one


def test_anything_else_is_left_alone():
    pair = (add_one, "long")  # not a PySpark type: not a command
    assert spark_commands.function_of(pair) is pair
    assert spark_commands.function_of(add_one) is add_one
    triple = (add_one, LongType(), None)
    assert spark_commands.function_of(triple) is triple


def test_the_service_evaluates_a_sealed_command(service):
    def add_one(x):  # local, so that it travels by value
        return x + 1

    client = executor.connect(service.uri, timeout=30)
    batch = pa.record_batch({"x": pa.array([1, 2, 3], pa.int64())})
    results = list(client.map((add_one, LongType()), [batch], return_type=pa.int64()))
    assert [v for b in results for v in b.column(0).to_pylist()] == [2, 3, 4]


def test_the_service_refuses_a_tuple_that_is_not_a_command(service):
    def add_one(x):
        return x + 1

    client = executor.connect(service.uri, timeout=30)
    batch = pa.record_batch({"x": pa.array([1], pa.int64())})
    with pytest.raises(executor.ProtocolError, match="not a function"):
        list(client.map((add_one, "long"), [batch], return_type=pa.int64()))
