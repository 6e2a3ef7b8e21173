"""Queries whose functions report PySpark's ``TaskContext``, shared by the SQL
extension's local and remote modules: each runs through flightpickle's operator
and through Spark's own, and what the functions saw must agree."""

from __future__ import annotations

import pandas as pd

from sql_operators import physical_plan, with_transport

#: A local property the driver sets, which the functions read back.
PROPERTY = "flightpickle.test.team"
PARTITIONS = 4
TASK_OUTPUT = "partition int, attempt int, stage int, task_attempt long, team string, rows long"


def numbers(spark):
    return spark.range(0, 400, numPartitions=PARTITIONS).selectExpr("id", "concat('n', cast(id as string)) as text")


def task_of_partition(frames):
    """mapInPandas: one row per task, of what its TaskContext says."""
    from pyspark import TaskContext

    rows = sum(len(frame) for frame in frames)
    task = TaskContext.get()
    yield pd.DataFrame(
        {
            "partition": [task.partitionId()],
            "attempt": [task.attemptNumber()],
            "stage": [task.stageId()],
            "task_attempt": [task.taskAttemptId()],
            "team": [task.getLocalProperty(PROPERTY)],
            "rows": [rows],
        }
    )


def task_of_rows(ids: pd.Series) -> pd.Series:
    """A scalar pandas_udf: each row's task, as partition/attempt/team."""
    from pyspark import TaskContext

    task = TaskContext.get()
    return pd.Series([f"{task.partitionId()}/{task.attemptNumber()}/{task.getLocalProperty(PROPERTY)}"] * len(ids))


def assert_operator(query, node: str) -> None:
    """``query`` runs ``node``: flightpickle's operator, or (None) Spark's own."""
    plan = physical_plan(query)
    assert node in plan if node is not None else "FlightPickle" not in plan, plan


def tasks_seen(spark, node: str | None):
    """What the mapInPandas tasks saw, by partition, with the team set; the
    stage and task attempt ids are checked here against the tracker's, as they
    differ from run to run."""
    query = numbers(spark).mapInPandas(task_of_partition, TASK_OUTPUT)
    assert_operator(query, node)
    spark.sparkContext.setLocalProperty(PROPERTY, "pricing")
    try:
        rows = sorted(tuple(row) for row in query.collect())
    finally:
        spark.sparkContext.setLocalProperty(PROPERTY, None)
    stages = {row[2] for row in rows}
    assert len(stages) == 1, rows
    assert spark.sparkContext.statusTracker().getStageInfo(stages.pop()).numTasks == PARTITIONS
    assert len({row[3] for row in rows}) == PARTITIONS, "each task has its own attempt id"
    return [(partition, attempt, team, count) for partition, attempt, _, _, team, count in rows]


def assert_map_in_pandas_sees_sparks_task_context(spark, node: str) -> None:
    ours = tasks_seen(spark, node)
    stock = with_transport(spark, "spark", lambda: tasks_seen(spark, None))
    assert ours == stock
    assert ours == [(partition, 0, "pricing", 100) for partition in range(PARTITIONS)]


def rows_seen(spark, node: str | None):
    from pyspark.sql.functions import pandas_udf, spark_partition_id

    query = numbers(spark).select("id", spark_partition_id().alias("pid"), pandas_udf(task_of_rows, "string")("id").alias("task"))
    assert_operator(query, node)
    spark.sparkContext.setLocalProperty(PROPERTY, "pricing")
    try:
        return sorted(tuple(row) for row in query.collect())
    finally:
        spark.sparkContext.setLocalProperty(PROPERTY, None)


def assert_pandas_udf_sees_sparks_task_context(spark, node: str) -> None:
    ours = rows_seen(spark, node)
    stock = with_transport(spark, "spark", lambda: rows_seen(spark, None))
    assert ours == stock
    assert len(ours) == 400 and all(task == f"{pid}/0/pricing" for _, pid, task in ours), ours[:5]
