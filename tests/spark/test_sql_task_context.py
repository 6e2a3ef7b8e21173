"""Task semantics of the SQL extension with ``spark.flightpickle.transport=local``:
PySpark's ``TaskContext`` in functions the executor service runs says what it
says under Spark's own operators (partition, attempt, stage, task attempt id,
local properties), and a task that fails is retried, its function seeing the
new attempt. This module's session allows a second attempt per task."""

import sys
from typing import Iterator

import pandas as pd

import pytest

import task_queries
from sql_operators import TRANSPORT, physical_plan, shipped_by_value, with_transport

pytestmark = pytest.mark.spark

SPARK_CONF = {TRANSPORT: "local", "spark.task.maxFailures": "2"}
#: A copy: a function here naming task_queries would ship that whole module by value.
PROPERTY = task_queries.PROPERTY


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


def partition_and_attempt() -> str:
    from pyspark import TaskContext

    task = TaskContext.get()
    return f"{task.partitionId()}/{task.attemptNumber()}/{task.getLocalProperty(PROPERTY)}"


def task_of_row(number):
    return partition_and_attempt()


def task_of_series(batches: Iterator[pd.Series]) -> Iterator[pd.Series]:
    for ids in batches:
        yield pd.Series([partition_and_attempt()] * len(ids))


def task_of_batches(batches):
    import pyarrow as pa

    for batch in batches:
        yield pa.RecordBatch.from_arrays([batch.column(0), pa.array([partition_and_attempt()] * batch.num_rows)], ["id", "task"])


def task_of_group(frame):
    return pd.DataFrame({"id": [int(frame["key"].iloc[0])], "task": [partition_and_attempt()]})


def task_of_aggregate(ids: pd.Series) -> str:
    return partition_and_attempt()


def every_kind(spark):
    """A query of each other kind, with the task its function saw, as (id, task) rows."""
    from pyspark.sql.functions import pandas_udf, udf

    rows = task_queries.numbers(spark).select("id")
    keyed = task_queries.numbers(spark).selectExpr("id", "text", "id % 7 as key")
    return {
        "FlightPickleArrowEvalPython udf": rows.select("id", udf(task_of_row, "string", useArrow=True)("id")),
        "FlightPickleArrowEvalPython iterator": rows.select("id", pandas_udf(task_of_series, "string")("id")),
        "FlightPickleMapInArrow": rows.mapInArrow(task_of_batches, "id long, task string"),
        "FlightPickleFlatMapGroupsInPandas": keyed.groupBy("key").applyInPandas(task_of_group, "id long, task string"),
        "FlightPickleArrowAggregatePython": keyed.groupBy("key").agg(pandas_udf(task_of_aggregate, "string")("id")),
    }


def seen_by_every_kind(spark, ours: bool) -> dict:
    seen = {}
    spark.sparkContext.setLocalProperty(PROPERTY, "pricing")
    try:
        for name, query in every_kind(spark).items():
            seen[name] = sorted(tuple(row) for row in query.collect())
            # After the run: under adaptive execution, the plan of a grouped query is final only then.
            task_queries.assert_operator(query, name.split()[0] if ours else None)
    finally:
        spark.sparkContext.setLocalProperty(PROPERTY, None)
    return seen


def test_every_other_kind_sees_the_task_context_sparks_operator_gives(spark):
    ours = seen_by_every_kind(spark, True)
    assert ours == with_transport(spark, "spark", lambda: seen_by_every_kind(spark, False))
    for name, rows in ours.items():
        assert rows and all(task.split("/", 1)[1] == "0/pricing" for _, task in rows), (name, rows[:3])
