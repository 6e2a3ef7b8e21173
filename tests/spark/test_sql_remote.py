"""The SQL extension with ``spark.flightpickle.transport=remote``: the executors
stream ``udf``, ``pandas_udf`` (scalar and iterator), ``mapInArrow``, ``mapInPandas`` and grouped
``applyInPandas`` and ``applyInArrow`` batches over Arrow Flight to a separate pool of Python executors, which the module starts on
loopback with a bearer token before its Spark session.

Each query runs through the pool, then with ``spark.flightpickle.transport=spark``
set at run time (Spark's own operators); both must give the same rows. That the
pool did the work shows three ways: the plan names flightpickle's operator, the
function reports a variable that only the pool's environment has, and the
command line of its process's parent (the pool's supervisor, serving gRPC).
"""

import os
import subprocess
import sys
from typing import Iterator

import pandas as pd
import pytest

from flightpickle.executor.launch import LocalService
from sql_operators import TRANSPORT, find_node, physical_plan, shipped_by_value, with_conf

pytestmark = pytest.mark.spark

URI = "spark.flightpickle.executor.uri"
#: Set in the pool's environment only: a function that sees it ran in the pool.
MARK = "FLIGHTPICKLE_TEST_POOL"
TOKEN = "remote-pool-s3cret"
# One attempt per task: a failing function fails the job at once. The pool's
# address and token file are added by the `pool` fixture before the session starts.
SPARK_CONF = {TRANSPORT: "remote", "spark.task.maxFailures": "1"}
OUTPUT = "id long, doubled long, text string, seen string"


def start_pool(tmp_path_factory, token: str, workers: int, mark: str) -> tuple[LocalService, object]:
    token_file = tmp_path_factory.mktemp("pool") / "token"
    token_file.write_text(token)
    environment = {**os.environ, MARK: mark}
    return LocalService(
        workers, "--token-file", str(token_file), listen="grpc://127.0.0.1:0", env=environment, stderr=subprocess.DEVNULL
    ), token_file


@pytest.fixture(scope="module")
def pool(tmp_path_factory):
    """The remote pool, started before the session, which points at it."""
    service, token_file = start_pool(tmp_path_factory, TOKEN, 2, "the-remote-pool")
    SPARK_CONF.update({URI: service.uri, "spark.flightpickle.executor.tokenFile": str(token_file)})
    try:
        yield service
    finally:
        assert service.stop() is not None


@pytest.fixture(scope="module")
def spark(pool, spark):
    """conftest's session, started once the pool runs."""
    return spark


@pytest.fixture(scope="module", autouse=True)
def by_value(spark):
    """The pool cannot import this module: its functions travel by value."""
    with shipped_by_value(spark, sys.modules[__name__]):
        yield


def where_it_ran() -> str:
    """The pool's mark and its supervisor's command line; empty and Spark's daemon elsewhere."""
    import os

    with open(f"/proc/{os.getppid()}/cmdline", "rb") as cmdline:
        parent = cmdline.read().replace(b"\0", b" ").decode()
    return f"{os.environ.get('FLIGHTPICKLE_TEST_POOL', '')}@{parent}"


def label(number):
    return f"{number * 3}|{where_it_ran()}"


def label_series(numbers: pd.Series) -> pd.Series:
    return (numbers * 3).astype(str) + "|" + where_it_ran()


def double_batches(batches):
    import pyarrow as pa
    import pyarrow.compute as pc

    seen = where_it_ran()
    for batch in batches:
        yield pa.RecordBatch.from_arrays(
            [batch.column(0), pc.multiply(batch.column(0), 2), batch.column(1), pa.array([seen] * batch.num_rows)],
            names=["id", "doubled", "text", "seen"],
        )


def double_frames(frames):
    seen = where_it_ran()
    for frame in frames:
        yield frame.assign(doubled=frame["id"] * 2, seen=seen)[["id", "doubled", "text", "seen"]]


def numbers(spark, partitions=4):
    return spark.range(0, 4000, numPartitions=partitions).selectExpr("id", "concat('n', cast(id as string)) as text")


def assert_ran_in_the_pool(seen: set[str]) -> None:
    assert all(s.startswith("the-remote-pool@") and "--listen grpc://127.0.0.1:" in s for s in seen), seen


def assert_ran_in_spark(seen: set[str]) -> None:
    assert all(s.startswith("@") and "flightpickle.executor" not in s for s in seen), seen


def rows_and_seen(frame):
    rows = frame.orderBy("id").collect()
    return [(r.id, r.doubled, r.text) for r in rows], {r.seen for r in rows}


@pytest.mark.parametrize("method, operator", [("mapInArrow", "FlightPickleMapInArrow"), ("mapInPandas", "FlightPickleMapInPandas")])
def test_map_functions_run_in_the_remote_pool_with_sparks_results(spark, method, operator):
    function = double_batches if method == "mapInArrow" else double_frames
    query = getattr(numbers(spark), method)(function, OUTPUT)
    assert operator in physical_plan(query)
    ours, our_seen = rows_and_seen(query)
    stock, stock_seen = with_conf(spark, TRANSPORT, "spark", lambda: rows_and_seen(query))
    assert ours == stock
    assert len(ours) == 4000 and ours[7] == (7, 14, "n7")
    assert_ran_in_the_pool(our_seen)
    assert_ran_in_spark(stock_seen)


def labels_and_seen(frame):
    rows = frame.orderBy("id").collect()
    pairs = [row.label.split("|", 1) for row in rows]
    return [(row.id, row.text, value) for row, (value, _) in zip(rows, pairs)], {seen for _, seen in pairs}


@pytest.mark.parametrize("kind", ["udf", "pandas_udf"])
def test_scalar_udfs_run_in_the_remote_pool_with_sparks_results(spark, kind):
    from pyspark.sql.functions import pandas_udf, udf

    function = udf(label, "string") if kind == "udf" else pandas_udf(label_series, "string")
    # Small batches: each partition's rows go in several batches, whose results must line up.
    spark.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", "97")
    try:
        query = numbers(spark).select("id", "text", function("id").alias("label"))
        assert "FlightPickleArrowEvalPython" in physical_plan(query)
        ours, our_seen = labels_and_seen(query)
        stock, stock_seen = with_conf(spark, TRANSPORT, "spark", lambda: labels_and_seen(query))
    finally:
        spark.conf.unset("spark.sql.execution.arrow.maxRecordsPerBatch")
    assert ours == stock
    assert len(ours) == 4000 and ours[11] == (11, "n11", "33")
    assert_ran_in_the_pool(our_seen)
    assert_ran_in_spark(stock_seen)


def labels_in_pieces(numbers: Iterator[pd.Series]) -> Iterator[pd.Series]:
    """An iterator pandas_udf that takes two batches before it answers, then answers them in
    pieces of 30 rows: its results are split unlike its input and must still line up."""
    pending = []
    for series in numbers:
        pending.append(series)
        if len(pending) == 2:
            yield from label_pieces(pending)
            pending = []
    yield from label_pieces(pending)


def label_pieces(parts):
    if not parts:
        return
    labels = label_series(pd.concat(parts, ignore_index=True))
    for start in range(0, len(labels), 30):
        yield labels[start : start + 30]


def test_an_iterator_pandas_udf_runs_in_the_remote_pool_with_sparks_results(spark):
    from pyspark.sql.functions import pandas_udf

    spark.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", "97")
    try:
        query = numbers(spark).select("id", "text", pandas_udf(labels_in_pieces, "string")("id").alias("label"))
        assert "FlightPickleArrowEvalPython" in with_conf(spark, "spark.sql.adaptive.enabled", "false",
                                                          lambda: physical_plan(query))
        ours, our_seen = labels_and_seen(query)
        stock, stock_seen = with_conf(spark, TRANSPORT, "spark", lambda: labels_and_seen(query))
    finally:
        spark.conf.unset("spark.sql.execution.arrow.maxRecordsPerBatch")
    assert ours == stock
    assert len(ours) == 4000 and ours[11] == (11, "n11", "33")
    assert_ran_in_the_pool(our_seen)
    assert_ran_in_spark(stock_seen)


def mean_where_it_ran(values: pd.Series) -> str:
    return f"{values.mean()}|{where_it_ran()}"


def test_a_grouped_aggregate_pandas_udf_runs_in_the_remote_pool_with_sparks_results(spark):
    from pyspark.sql.functions import pandas_udf

    query = numbers(spark).selectExpr("id", "id % 5 as key").groupBy("key").agg(
        pandas_udf(mean_where_it_ran, "string")("id").alias("mean")
    )

    def means_and_seen(frame):
        pairs = [(row.key, *row.mean.split("|", 1)) for row in frame.orderBy("key").collect()]
        return [(key, value) for key, value, _ in pairs], {seen for _, _, seen in pairs}

    assert "FlightPickleArrowAggregatePython" in with_conf(spark, "spark.sql.adaptive.enabled", "false",
                                                           lambda: physical_plan(query))
    ours, our_seen = means_and_seen(query)
    stock, stock_seen = with_conf(spark, TRANSPORT, "spark", lambda: means_and_seen(query))
    assert ours == stock and ours == [(k, str(sum(range(k, 4000, 5)) / 800)) for k in range(5)]
    assert_ran_in_the_pool(our_seen)
    assert_ran_in_spark(stock_seen)


GROUPED_OUTPUT = "key long, rows long, total long, seen string"
GROUPS = 5


def grouped_numbers(spark):
    return numbers(spark).selectExpr("id", f"id % {GROUPS} as key")


def group_summary(key: int, frame: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({"key": [key], "rows": [len(frame)], "total": [frame["id"].sum()], "seen": [where_it_ran()]})


def summarize_group(frame):
    return group_summary(int(frame["key"].iloc[0]), frame)


def summarize_group_by_key(key, frame):
    # The key comes from the group key names the open document carries to the pool.
    return group_summary(int(key[0]), frame)


def grouped_rows_and_seen(frame):
    rows = frame.orderBy("key").collect()
    return [(r.key, r.rows, r.total) for r in rows], {r.seen for r in rows}


def assert_grouped_query_runs_in_the_pool(spark, query, operator: str) -> None:
    """``query`` (one summary row per group) is planned as ``operator``, runs in the pool, and
    gives Spark's rows."""
    # Adaptive execution shows its first plan, before the rule that replaces operators after shuffles.
    plan = with_conf(spark, "spark.sql.adaptive.enabled", "false", lambda: physical_plan(query))
    assert operator in plan
    ours, our_seen = grouped_rows_and_seen(query)
    stock, stock_seen = with_conf(spark, TRANSPORT, "spark", lambda: grouped_rows_and_seen(query))
    assert ours == stock
    assert ours == [(k, 800, sum(range(k, 4000, GROUPS))) for k in range(GROUPS)]
    assert_ran_in_the_pool(our_seen)
    assert_ran_in_spark(stock_seen)


@pytest.mark.parametrize("function", [summarize_group, summarize_group_by_key])
def test_apply_in_pandas_runs_in_the_remote_pool_with_sparks_results(spark, function):
    query = grouped_numbers(spark).groupBy("key").applyInPandas(function, GROUPED_OUTPUT)
    assert_grouped_query_runs_in_the_pool(spark, query, "FlightPickleFlatMapGroupsInPandas")


def arrow_group_summary(key: int, table) -> "pa.Table":  # noqa: F821
    import pyarrow as pa
    import pyarrow.compute as pc

    return pa.table(
        {"key": [key], "rows": [table.num_rows], "total": [pc.sum(table.column("id")).as_py()], "seen": [where_it_ran()]}
    )


def summarize_table(table):
    return arrow_group_summary(table.column("key")[0].as_py(), table)


def summarize_table_by_key(key, table):
    # The key (pyarrow scalars) comes from the group key names the open document carries to the pool.
    return arrow_group_summary(key[0].as_py(), table)


@pytest.mark.parametrize("function", [summarize_table, summarize_table_by_key])
def test_apply_in_arrow_runs_in_the_remote_pool_with_sparks_results(spark, function):
    query = grouped_numbers(spark).groupBy("key").applyInArrow(function, GROUPED_OUTPUT)
    assert_grouped_query_runs_in_the_pool(spark, query, "FlightPickleFlatMapGroupsInArrow")


def metrics_of_a_run(spark, query, operator: str) -> dict:
    """The operator's metrics once the query ran, without adaptive execution (whose final plan
    would hide the node)."""

    def run():
        query.collect()
        return find_node(query._jdf.queryExecution().executedPlan(), operator)

    node = with_conf(spark, "spark.sql.adaptive.enabled", "false", run)
    names = ("functionTime", "functionCacheHits", "functionCacheMisses", "batchesReceived")
    return {name: node.metrics().apply(name).value() for name in names}


def test_the_operators_report_the_pools_function_time_and_cache_use(spark):
    from pyspark.sql.functions import udf

    scalar = metrics_of_a_run(
        spark, numbers(spark).select(udf(label, "string")("id").alias("label")), "FlightPickleArrowEvalPython"
    )
    assert scalar["functionTime"] > 0, scalar
    # A stream per partition (task), each a hit or a miss in a pool worker.
    assert scalar["functionCacheHits"] + scalar["functionCacheMisses"] == 4, scalar
    grouped_query = grouped_numbers(spark).groupBy("key").applyInPandas(summarize_group, GROUPED_OUTPUT)
    grouped = metrics_of_a_run(spark, grouped_query, "FlightPickleFlatMapGroupsInPandas")
    assert grouped["functionTime"] > 0, grouped
    assert grouped["batchesReceived"] == GROUPS, grouped
    # A stream per task with groups (tasks without rows open none), each a hit or a miss.
    assert 1 <= grouped["functionCacheHits"] + grouped["functionCacheMisses"] <= GROUPS, grouped


def fail_on_seven(number):
    if number == 7:
        raise ValueError("seven is not welcome in the pool")
    return number


def test_a_udf_that_raises_fails_the_job_with_its_python_traceback(spark):
    from pyspark.sql.functions import udf

    query = numbers(spark).select(udf(fail_on_seven, "long")("id").alias("n"))
    with pytest.raises(Exception) as failure:
        query.collect()
    message = str(failure.value)
    assert "a Python UDF failed in the flightpickle executor service" in message, message
    assert "Traceback" in message and "ValueError: seven is not welcome in the pool" in message
    assert "fail_on_seven" in message, "the traceback names the function"
    # The pool survives a failing function: the next query runs through it.
    rows, seen = rows_and_seen(numbers(spark).mapInArrow(double_batches, OUTPUT))
    assert len(rows) == 4000
    assert_ran_in_the_pool(seen)


def test_a_pool_that_refuses_the_token_fails_the_job_with_a_clear_message(spark, tmp_path_factory):
    """Another pool, with another token, named by the session at run time."""
    other, _ = start_pool(tmp_path_factory, "another-token", 1, "the-other-pool")
    try:
        query = numbers(spark, partitions=2).mapInArrow(double_batches, OUTPUT)
        with pytest.raises(Exception) as failure:
            with_conf(spark, URI, other.uri, query.collect)
    finally:
        assert other.stop() is not None
    message = str(failure.value)
    assert "the flightpickle executor pool refused this executor's token" in message, message
    assert f"the executor pool at {other.uri} refused this caller's bearer token" in message, message


def test_functions_in_the_pool_see_the_task_context_sparks_operators_give(spark):
    import task_queries

    with shipped_by_value(spark, task_queries):
        task_queries.assert_map_in_pandas_sees_sparks_task_context(spark, "FlightPickleMapInPandas")
        task_queries.assert_pandas_udf_sees_sparks_task_context(spark, "FlightPickleArrowEvalPython")
