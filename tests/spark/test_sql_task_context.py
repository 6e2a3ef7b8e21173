"""Task semantics of the SQL extension with ``spark.flightpickle.transport=local``:
PySpark's ``TaskContext`` in functions the executor service runs says what it
says under Spark's own operators (partition, attempt, stage, task attempt id,
local properties), and a task that fails is retried, its function seeing the
new attempt. This module's session allows a second attempt per task."""

import sys

import pytest

import task_queries
from sql_operators import TRANSPORT, physical_plan, shipped_by_value, with_transport

pytestmark = pytest.mark.spark

SPARK_CONF = {TRANSPORT: "local", "spark.task.maxFailures": "2"}


@pytest.fixture(scope="module", autouse=True)
def by_value(spark):
    """Executors cannot import these modules: their functions travel by value."""
    with shipped_by_value(spark, sys.modules[__name__]), shipped_by_value(spark, task_queries):
        yield


def test_map_in_pandas_sees_the_task_context_sparks_operator_gives(spark):
    task_queries.assert_map_in_pandas_sees_sparks_task_context(spark, "FlightPickleMapInPandas")


def test_a_pandas_udf_sees_the_task_context_sparks_operator_gives(spark):
    task_queries.assert_pandas_udf_sees_sparks_task_context(spark, "FlightPickleArrowEvalPython")


def fails_first_attempt(frames):
    from pyspark import TaskContext

    if TaskContext.get().attemptNumber() == 0:
        raise RuntimeError("the first attempt fails on purpose")
    yield from frames


def plus_one_on_retry(ids):
    from pyspark import TaskContext

    if TaskContext.get().attemptNumber() == 0:
        raise RuntimeError("the first attempt fails on purpose")
    return ids + 1


def test_a_map_in_pandas_task_that_fails_its_first_attempt_succeeds_on_the_retry(spark):
    query = task_queries.numbers(spark).mapInPandas(fails_first_attempt, "id long, text string")
    assert "FlightPickleMapInPandas" in physical_plan(query)
    rows = sorted(tuple(row) for row in query.collect())
    assert rows == [(n, f"n{n}") for n in range(400)]


def test_a_pandas_udf_task_that_fails_its_first_attempt_succeeds_on_the_retry(spark):
    from pyspark.sql.functions import pandas_udf

    query = task_queries.numbers(spark).select("id", pandas_udf(plus_one_on_retry, "long")("id").alias("next"))
    assert "FlightPickleArrowEvalPython" in physical_plan(query)
    ours = sorted(tuple(row) for row in query.collect())
    assert ours == [(n, n + 1) for n in range(400)]
    assert ours == with_transport(spark, "spark", lambda: sorted(tuple(row) for row in query.collect()))
