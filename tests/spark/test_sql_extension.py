"""The SQL extension with ``spark.flightpickle.transport=local``: ``mapInArrow``,
``mapInPandas``, the (Arrow-batched) ``udf`` and the scalar ``pandas_udf`` run
through each executor's flightpickle executor service, started by the plugin,
instead of Spark's Python workers.

Each query runs twice in the one session: through the service, then with
``spark.flightpickle.transport=spark`` set at run time, which leaves Spark's own
operator in place; both must give the same rows. That the service did the work
is checked twice over: the physical plan names flightpickle's operator, and the
function reports the command line of its process's parent, which is the
service's supervisor for flightpickle's operator and Spark's daemon otherwise.
"""

import sys
from typing import Iterator, Tuple

import pandas as pd
import pyarrow as pa
import pytest

import flightpickle
import flightpickle.spark
import unpickle_counter
from sql_operators import TRANSPORT, FallbackLog, find_node, physical_plan, with_conf, with_transport

pytestmark = pytest.mark.spark

# One attempt per task: a failing function fails the job at once.
SPARK_CONF = {TRANSPORT: "local", "spark.task.maxFailures": "1", "spark.python.task.killTimeout": "3s"}
OUTPUT = "id long, doubled long, text string, parent string"


@pytest.fixture(scope="module", autouse=True)
def by_value(spark):
    """Executors cannot import these modules: their functions travel by value."""
    flightpickle.spark.enable(spark)
    modules = [sys.modules[__name__], unpickle_counter]
    for module in modules:
        flightpickle.register_pickle_by_value(module)
    yield
    for module in modules:
        flightpickle.unregister_pickle_by_value(module)


def parent_command() -> str:
    """The command line of this process's parent: the service's supervisor, or Spark's daemon."""
    import os

    with open(f"/proc/{os.getppid()}/cmdline", "rb") as cmdline:
        return cmdline.read().replace(b"\0", b" ").decode()


def label(number):
    return f"{number * 3}|{parent_command()}"


def label_series(numbers: pd.Series) -> pd.Series:
    return (numbers * 3).astype(str) + "|" + parent_command()


def double_with_parent(batches):
    import os

    import pyarrow as pa
    import pyarrow.compute as pc

    with open(f"/proc/{os.getppid()}/cmdline", "rb") as cmdline:
        parent = cmdline.read().replace(b"\0", b" ").decode()
    for batch in batches:
        yield pa.RecordBatch.from_arrays(
            [batch.column(0), pc.multiply(batch.column(0), 2), batch.column(1), pa.array([parent] * batch.num_rows)],
            names=["id", "doubled", "text", "parent"],
        )


def double_frames_with_parent(frames):
    import os

    with open(f"/proc/{os.getppid()}/cmdline", "rb") as cmdline:
        parent = cmdline.read().replace(b"\0", b" ").decode()
    for frame in frames:
        yield frame.assign(doubled=frame["id"] * 2, parent=parent)[["id", "doubled", "text", "parent"]]


def raise_on_seven(batches):
    for batch in batches:
        if 7 in batch.column(0).to_pylist():
            raise ValueError("seven is not welcome here")
        yield batch


def numbers(spark, partitions=4):
    return spark.range(0, 5000, numPartitions=partitions).selectExpr("id", "concat('n', cast(id as string)) as text")


def rows_and_parents(frame):
    rows = frame.orderBy("id").collect()
    return [(r.id, r.doubled, r.text) for r in rows], {r.parent for r in rows}


def assert_fails_with_traceback(run, error: str, function_name: str) -> None:
    """``run()`` fails its job with the service's report of the function's Python traceback."""
    with pytest.raises(Exception) as failure:
        run()
    message = str(failure.value)
    assert "flightpickle executor service" in message
    assert "Traceback" in message and error in message
    assert function_name in message, "the traceback names the function"


def test_map_in_arrow_runs_in_the_executor_service_with_sparks_results(spark):
    query = numbers(spark).mapInArrow(double_with_parent, OUTPUT)
    ours, our_parents = rows_and_parents(query)
    stock, stock_parents = with_transport(spark, "spark", lambda: rows_and_parents(query))
    assert ours == stock
    assert len(ours) == 5000 and ours[7] == (7, 14, "n7")
    assert all("flightpickle.executor serve" in parent for parent in our_parents), our_parents
    assert not any("flightpickle.executor" in parent for parent in stock_parents), stock_parents


def test_map_in_pandas_runs_in_the_executor_service_with_sparks_results(spark):
    query = numbers(spark).mapInPandas(double_frames_with_parent, OUTPUT)
    ours, our_parents = rows_and_parents(query)
    stock, stock_parents = with_transport(spark, "spark", lambda: rows_and_parents(query))
    assert ours == stock
    assert len(ours) == 5000 and ours[9] == (9, 18, "n9")
    assert all("flightpickle.executor serve" in parent for parent in our_parents), our_parents
    assert not any("flightpickle.executor" in parent for parent in stock_parents), stock_parents


MAP_ACCEPTS_ANY_ITERABLE = "spark.sql.execution.pythonUDF.mapInBatch.legacy.acceptAnyIterable.enabled"


def ids_as_a_list(batches):
    return [batch.select(["id"]) for batch in batches]


def test_map_in_arrow_may_return_a_list_unless_the_session_asks_for_an_iterator_as_in_spark(spark):
    query = numbers(spark).mapInArrow(ids_as_a_list, "id long")
    assert "FlightPickleMapInArrow" in physical_plan(query)

    def ids():
        return [row.id for row in query.orderBy("id").collect()]

    assert ids() == with_transport(spark, "spark", ids) == list(range(5000)), "Spark 4.3's default takes any iterable"

    def strictly(run):
        return with_conf(spark, MAP_ACCEPTS_ANY_ITERABLE, "false", run)

    with pytest.raises(Exception) as failure:
        strictly(ids)
    message = str(failure.value)
    assert "flightpickle executor service" in message
    assert "should be iterator of pyarrow.RecordBatch, but is list" in message and MAP_ACCEPTS_ANY_ITERABLE in message
    with pytest.raises(Exception, match="UDF_RETURN_TYPE"):
        strictly(lambda: with_transport(spark, "spark", ids))


def labels_and_parents(frame):
    rows = frame.orderBy("id").collect()
    pairs = [row.label.split("|", 1) for row in rows]
    return [(row.id, row.text, value) for row, (value, _) in zip(rows, pairs)], {parent for _, parent in pairs}


@pytest.mark.parametrize("kind", ["udf", "pandas_udf"])
def test_scalar_udfs_run_in_the_executor_service_with_sparks_results(spark, kind):
    from pyspark.sql.functions import pandas_udf, udf

    function = udf(label, "string") if kind == "udf" else pandas_udf(label_series, "string")
    # Small batches: each partition's rows go in several batches, whose results must line up.
    spark.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", "97")
    try:
        query = numbers(spark).select("id", "text", function("id").alias("label"))
        ours, our_parents = labels_and_parents(query)
        stock, stock_parents = with_transport(spark, "spark", lambda: labels_and_parents(query))
    finally:
        spark.conf.unset("spark.sql.execution.arrow.maxRecordsPerBatch")
    assert ours == stock
    assert len(ours) == 5000 and ours[11] == (11, "n11", "33")
    assert all("flightpickle.executor serve" in parent for parent in our_parents), our_parents
    assert not any("flightpickle.executor" in parent for parent in stock_parents), stock_parents


def test_the_physical_plan_shows_flightpickles_operator(spark):
    spark.conf.set("spark.sql.adaptive.enabled", "false")
    try:
        query = numbers(spark).mapInArrow(double_with_parent, OUTPUT)
        assert "FlightPickleMapInArrow" in physical_plan(query)
        query.collect()
        metrics = query._jdf.queryExecution().executedPlan().metrics()
        assert metrics.apply("rowsSent").value() == 5000
        assert metrics.apply("rowsReceived").value() == 5000
        assert metrics.apply("batchesSent").value() >= 4, "at least a batch per partition"
        assert metrics.apply("bytesSent").value() >= 5000 * 8
        stock_plan = with_transport(spark, "spark", lambda: physical_plan(numbers(spark).mapInArrow(double_with_parent, OUTPUT)))
        assert "FlightPickleMapInArrow" not in stock_plan and "MapInArrow" in stock_plan
        assert "FlightPickleMapInPandas" in physical_plan(numbers(spark).mapInPandas(double_frames_with_parent, OUTPUT))
        from pyspark.sql.functions import pandas_udf, udf

        for function in (udf(label, "string"), pandas_udf(label_series, "string")):
            assert "FlightPickleArrowEvalPython" in physical_plan(numbers(spark).select(function("id")))
    finally:
        spark.conf.unset("spark.sql.adaptive.enabled")


def test_a_function_that_raises_fails_the_task_with_its_python_traceback(spark):
    query = numbers(spark).mapInArrow(raise_on_seven, "id long, text string")
    assert_fails_with_traceback(query.collect, "ValueError: seven is not welcome here", "raise_on_seven")
    # The service survives a failing function: the next query runs.
    assert numbers(spark).mapInArrow(double_with_parent, OUTPUT).count() == 5000


def test_an_unsupported_udf_falls_back_to_sparks_operator(spark):
    """A UDF on day-time intervals: the service does not convert those yet."""
    from pyspark.sql.functions import udf

    spark.conf.set("spark.sql.adaptive.enabled", "false")
    try:
        query = numbers(spark).selectExpr("id", "make_dt_interval(cast(id as int), 0, 0, 0) as span")
        query = query.select("id", udf(lambda span: str(span.days), "string")("span").alias("days"))
        plan = physical_plan(query)
        rows = query.orderBy("id").collect()
    finally:
        spark.conf.unset("spark.sql.adaptive.enabled")
    assert "FlightPickleArrowEvalPython" not in plan and "ArrowEvalPython" in plan
    assert rows[31].days == "31"


def test_an_unsupported_case_falls_back_to_sparks_operator(spark):
    """Barrier mode is not supported by flightpickle's operator yet."""
    spark.conf.set("spark.sql.adaptive.enabled", "false")
    try:
        query = numbers(spark, partitions=2).mapInArrow(double_with_parent, OUTPUT, barrier=True)
        plan = physical_plan(query)
        assert "FlightPickleMapInArrow" not in plan and "MapInArrow" in plan
        rows, parents = rows_and_parents(query)
    finally:
        spark.conf.unset("spark.sql.adaptive.enabled")
    assert len(rows) == 5000 and rows[3] == (3, 6, "n3")
    assert not any("flightpickle.executor" in parent for parent in parents)


# Over spark.broadcast.UDFCompressionThreshold (1 MiB) even after sealing's compression: random bytes.
LARGE_CLOSURE_BYTES = 3 * 1024 * 1024


def test_a_udf_over_the_broadcast_threshold_runs_in_the_executor_service_with_sparks_results(spark):
    import numpy as np
    from pyspark.sql.functions import pandas_udf

    model = np.random.default_rng(2).integers(0, 2**40, LARGE_CLOSURE_BYTES // 8)
    before = flightpickle.spark.stats().broadcast_commands
    with_model = pandas_udf(lambda ids: ids + model[ids % len(model)], "long")
    query = numbers(spark, partitions=8).select("id", with_model("id").alias("scored"))
    assert flightpickle.spark.stats().broadcast_commands == before + 1, "the command went as a broadcast"
    assert "FlightPickleArrowEvalPython" in physical_plan(query)
    ours = [tuple(row) for row in query.orderBy("id").collect()]
    stock = with_transport(spark, "spark", lambda: [tuple(row) for row in query.orderBy("id").collect()])
    assert ours == stock
    assert ours[12] == (12, 12 + int(model[12]))


def test_a_udf_over_the_broadcast_threshold_is_opened_once_per_service_worker(spark):
    """Tasks send the function's digest; each worker asks for the body, and unpickles it, once."""
    import numpy as np
    from pyspark.sql.functions import udf

    payload = unpickle_counter.CountedPayload(np.random.default_rng(3).bytes(LARGE_CLOSURE_BYTES))
    tasks = 16
    query = spark.range(0, tasks, numPartitions=tasks).select(udf(unpickle_counter.probe(payload), "string")("id").alias("p"))
    assert "FlightPickleArrowEvalPython" in physical_plan(query)
    reports = [row.p for row in query.collect()]
    per_worker = unpickle_counter.unpickles_per_worker(reports, LARGE_CLOSURE_BYTES)
    assert per_worker and all(count == 1 for count in per_worker.values()), per_worker
    # One service per executor, one worker each (the executors' one core): at most two opened it.
    assert len(per_worker) <= 2 < tasks, per_worker


def exit_on_seven(batches):
    import os

    for batch in batches:
        if 7 in batch.column(0).to_pylist():
            os._exit(3)
        yield batch


def test_a_function_that_kills_its_worker_fails_the_task_and_the_next_query_runs(spark):
    query = numbers(spark).mapInArrow(exit_on_seven, "id long, text string")
    with pytest.raises(Exception) as failure:
        query.collect()
    assert "lost the Python worker" in str(failure.value), str(failure.value)
    # The service replaced the worker: the next query runs through it.
    rows, parents = rows_and_parents(numbers(spark).mapInArrow(double_with_parent, OUTPUT))
    assert len(rows) == 5000 and rows[7] == (7, 14, "n7")
    assert all("flightpickle.executor serve" in parent for parent in parents), parents


def sleep_after_marking(marks: str, seconds: float):
    """A map function that marks when it starts and when it has slept over a batch, before answering."""

    def run(batches):
        import os
        import time

        open(os.path.join(marks, f"started-{os.getpid()}"), "w").close()
        for number, batch in enumerate(batches):
            time.sleep(seconds)
            open(os.path.join(marks, f"finished-{os.getpid()}-{number}"), "w").close()
            yield batch

    return run


def wait_for(predicate, what: str, seconds: float = 120):
    import time

    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.1)


def test_a_cancelled_job_stops_its_tasks_before_their_function_answers(spark, tmp_path):
    """Both executors' tasks wait on a function that answers after 30 s. The driver gives up on a
    cancelled job at once whatever its tasks do; that the killed tasks stopped shows in their
    executors' one core each being free again for another job before the function answered."""
    import threading

    marks = tmp_path
    query = numbers(spark, partitions=2).mapInArrow(sleep_after_marking(str(marks), 30), "id long, text string")
    outcome = {}

    def run_in_group():
        spark.sparkContext.setJobGroup("slow-flightpickle", "cancelled by the test")
        try:
            outcome["rows"] = query.collect()
        except Exception as error:  # the cancellation
            outcome["error"] = error

    runner = threading.Thread(target=run_in_group)
    runner.start()
    wait_for(lambda: len(list(marks.glob("started-*"))) == 2, "the function to start on both executors")
    spark.sparkContext.cancelJobGroup("slow-flightpickle")
    runner.join(timeout=120)
    assert not runner.is_alive(), "the job did not end"
    assert "error" in outcome and "cancel" in str(outcome["error"]).lower(), outcome
    # Needs a core on an executor: both were held by the killed tasks until they stopped.
    assert [row.d for row in spark.range(0, 4, numPartitions=4).selectExpr("id * 2 as d").collect()] == [0, 2, 4, 6]
    assert not list(marks.glob("finished-*")), "the killed tasks held their cores until the function answered"
    # The service was started with Spark's grace for its own Python workers.
    assert all("--cancel-grace 3.0 " in parent for parent in again_parents(spark)), again_parents(spark)
    # A killed task's function still running after the service's cancel grace (3 s) loses its
    # worker to a fresh one (one waiting for its input ends with the stream), so each service's one
    # worker is free for the next stream long before the function would answer. Had a worker been
    # kept busy, this job would have waited for its function, which marks when it answers.
    again = numbers(spark, partitions=4).mapInArrow(lambda batches: batches, "id long, text string")
    assert sorted(row.id for row in again.collect()) == list(range(5000))
    assert not list(marks.glob("finished-*")), "the next job waited for a killed task's function"


def again_parents(spark) -> set[str]:
    """The command lines of the processes that started the workers of a mapInArrow job."""

    def parents(batches):
        import pyarrow as pa

        for _ in batches:
            yield pa.record_batch({"parent": [parent_command()]})

    return {row.parent for row in numbers(spark, partitions=4).mapInArrow(parents, "parent string").collect()}


def test_a_broadcast_command_that_is_not_sealed_falls_back_to_sparks_operator(spark):
    """With target='pyspark' the broadcast holds a plain pickle, which the service does not take."""
    import numpy as np
    from pyspark.sql.functions import udf

    model = np.random.default_rng(4).integers(0, 2**40, LARGE_CLOSURE_BYTES // 8)
    flightpickle.spark.enable(spark, target="pyspark", seal=False)
    try:
        before = flightpickle.spark.stats().broadcast_commands
        with_model = udf(lambda i: i + int(model[i % len(model)]), "long")
        query = numbers(spark, partitions=2).select("id", with_model("id").alias("scored"))
        assert flightpickle.spark.stats().broadcast_commands == before + 1, "the command went as a broadcast"
    finally:
        flightpickle.spark.enable(spark)
    plan = physical_plan(query)
    assert "FlightPickleArrowEvalPython" not in plan and "ArrowEvalPython" in plan
    rows = query.orderBy("id").collect()
    assert len(rows) == 5000 and rows[5].scored == 5 + int(model[5])


# applyInPandas. Group 0 holds 3,000 rows, more than the batch size the grouped tests set: Spark
# sends such a group in several Arrow batches but calls the function once with all of it, and so
# must flightpickle. Groups 3 and 5 return no rows (a wholly empty DataFrame, and an empty one with
# the result's columns), which Spark accepts.
GROUPED_OUTPUT = "key long, rows long, total long, first_text string, key_type string, parent string"
GROUPED_BATCH = "1000"
EMPTY_GROUPS = (3, 5)


def grouped_numbers(spark):
    return numbers(spark).selectExpr("id", "text", "case when id < 3000 then 0 else id % 7 + 1 end as key")


def summary(key, frame, key_type):
    if key == 3:
        return pd.DataFrame()
    if key == 5:
        return pd.DataFrame(columns=["key", "rows", "total", "first_text", "key_type", "parent"])
    first = frame.sort_values("id")["text"].iloc[0]
    return pd.DataFrame(
        {
            "key": [key],
            "rows": [len(frame)],
            "total": [frame["id"].sum()],
            "first_text": [first],
            "key_type": [key_type],
            "parent": [parent_command()],
        }
    )


def summarize_group(frame):
    return summary(int(frame["key"].iloc[0]), frame, "none")


def summarize_group_by_key(key, frame):
    # Spark passes the key values as pandas gives them (numpy scalars): the type must match too.
    return summary(int(key[0]), frame, type(key[0]).__name__)


def raise_on_group_two(frame):
    if frame["key"].iloc[0] == 2:
        raise ValueError("group two is not welcome here")
    return frame[["key"]]


def grouped_rows_and_parents(frame):
    rows = frame.orderBy("key").collect()
    return [tuple(row)[:-1] for row in rows], {row.parent for row in rows}


@pytest.fixture
def small_arrow_batches(spark):
    spark.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", GROUPED_BATCH)
    yield
    spark.conf.unset("spark.sql.execution.arrow.maxRecordsPerBatch")


@pytest.mark.parametrize("function", [summarize_group, summarize_group_by_key])
def test_apply_in_pandas_runs_in_the_executor_service_with_sparks_results(spark, small_arrow_batches, function):
    query = grouped_numbers(spark).groupBy("key").applyInPandas(function, GROUPED_OUTPUT)
    ours, our_parents = grouped_rows_and_parents(query)
    stock, stock_parents = with_transport(spark, "spark", lambda: grouped_rows_and_parents(query))
    assert ours == stock
    keys = [row[0] for row in ours]
    assert keys == [k for k in range(8) if k not in EMPTY_GROUPS]
    # Group 0 came whole, though larger than a batch: 3,000 rows, starting at n0.
    assert ours[0][:4] == (0, 3000, sum(range(3000)), "n0")
    assert all("flightpickle.executor serve" in parent for parent in our_parents), our_parents
    assert not any("flightpickle.executor" in parent for parent in stock_parents), stock_parents


def test_the_plan_names_flightpickles_grouped_operator_and_its_metrics_add_up(spark, small_arrow_batches):
    offset = uuid_offset()

    def shifted_totals(frame):  # a new function, so that no service worker has it yet
        return pd.DataFrame({"key": [frame["key"].iloc[0]], "total": [frame["id"].sum() + offset]})

    spark.conf.set("spark.sql.adaptive.enabled", "false")
    try:
        def fresh_query():
            return grouped_numbers(spark).groupBy("key").applyInPandas(shifted_totals, "key long, total long")

        runs = []
        for _ in range(2):  # the same function, in two fresh plans: workers keep it by digest
            query = fresh_query()
            assert "FlightPickleFlatMapGroupsInPandas" in physical_plan(query)
            rows = query.collect()
            runs.append(find_node(query._jdf.queryExecution().executedPlan(), "FlightPickleFlatMapGroupsInPandas"))
        stock_plan = with_transport(spark, "spark", lambda: physical_plan(fresh_query()))
    finally:
        spark.conf.unset("spark.sql.adaptive.enabled")
    assert "FlightPickleFlatMapGroupsInPandas" not in stock_plan and "FlatMapGroupsInPandas" in stock_plan
    assert sorted(rows) == sorted((k, t + offset) for k, t in expected_totals().items())
    first, second = [{name: node.metrics().apply(name).value() for name in METRIC_NAMES} for node in runs]
    for metrics in (first, second):
        assert metrics["rowsSent"] == 5000 and metrics["rowsReceived"] == 8
        # One batch per group, each way, however large the group.
        assert metrics["batchesSent"] == 8 and metrics["batchesReceived"] == 8
        assert metrics["functionTime"] > 0
        streams = metrics["functionCacheHits"] + metrics["functionCacheMisses"]
        assert 1 <= streams <= 8, metrics
    # Each executor's one service worker opened the new function at most once, then kept it.
    assert 1 <= first["functionCacheMisses"] <= 2, first
    assert second["functionCacheMisses"] == 0 and second["functionCacheHits"] >= 1, second


METRIC_NAMES = ("rowsSent", "rowsReceived", "batchesSent", "batchesReceived", "functionTime",
                "functionCacheHits", "functionCacheMisses")


def uuid_offset() -> int:
    import uuid

    return uuid.uuid4().int % 1_000_000


def expected_totals() -> dict:
    totals = {0: sum(range(3000))}
    for i in range(3000, 5000):
        totals[i % 7 + 1] = totals.get(i % 7 + 1, 0) + i
    return totals


def test_the_scalar_operators_report_function_time_and_cache_use_too(spark):
    from pyspark.sql.functions import udf

    spark.conf.set("spark.sql.adaptive.enabled", "false")
    try:
        query = numbers(spark).select(udf(label, "string")("id").alias("label"))
        query.collect()
        node = find_node(query._jdf.queryExecution().executedPlan(), "FlightPickleArrowEvalPython")
    finally:
        spark.conf.unset("spark.sql.adaptive.enabled")
    metrics = node.metrics()
    assert metrics.apply("functionTime").value() > 0
    # A stream per partition, each a hit or a miss.
    assert metrics.apply("functionCacheHits").value() + metrics.apply("functionCacheMisses").value() == 4


def test_a_grouped_function_that_raises_fails_the_task_with_its_python_traceback(spark):
    query = grouped_numbers(spark).groupBy("key").applyInPandas(raise_on_group_two, "key long")
    assert_fails_with_traceback(query.collect, "ValueError: group two is not welcome here", "raise_on_group_two")


def test_grouping_by_an_expression_and_cogroup_stay_sparks_operators(spark):
    spark.conf.set("spark.sql.adaptive.enabled", "false")
    try:
        data = grouped_numbers(spark)
        by_expression = data.groupBy(data.id % 3).applyInPandas(lambda f: f[["id"]].head(1), "id long")
        plan = physical_plan(by_expression)
        firsts = sorted(row.id for row in by_expression.collect())
        cogrouped = (
            data.groupBy("key")
            .cogroup(data.groupBy("key"))
            .applyInPandas(lambda left, right: pd.DataFrame({"n": [len(left) + len(right)]}), "n long")
        )
        cogroup_plan = physical_plan(cogrouped)
        sizes = sorted(row.n for row in cogrouped.collect())
    finally:
        spark.conf.unset("spark.sql.adaptive.enabled")
    assert "FlightPickleFlatMapGroupsInPandas" not in plan and "FlatMapGroupsInPandas" in plan
    assert len(firsts) == 3
    assert "FlightPickle" not in cogroup_plan and "FlatMapCoGroupsInPandas" in cogroup_plan
    assert sizes == sorted(2 * n for n in [3000] + [len(range(3000 + k, 5000, 7)) for k in range(7)])


def relabelled(values: Iterator[pd.Series]) -> Iterator[pd.Series]:
    """Each value's label, a token of this call and the parent's command line; it takes three
    batches before it answers, and answers in pieces of 50 rows, so that its results are split
    unlike its input and must still line up with the input rows."""
    import uuid

    call, parent, pending = uuid.uuid4().hex, parent_command(), []
    for series in values:
        pending.append(series)
        if len(pending) == 3:
            yield from labelled_pieces(pending, call, parent)
            pending = []
    yield from labelled_pieces(pending, call, parent)


def labelled_pieces(parts, call: str, parent: str):
    if not parts:
        return
    whole = pd.concat(parts, ignore_index=True)
    labels = whole.astype(str) + "|" + call + "|" + parent
    for start in range(0, len(labels), 50):
        yield labels[start : start + 50]


def relabel_ids(ids: Iterator[pd.Series]) -> Iterator[pd.Series]:
    return relabelled(series * 3 for series in ids)


def relabel_pairs(pairs: Iterator[Tuple[pd.Series, pd.Series]]) -> Iterator[pd.Series]:
    return relabelled(ids.astype(str) + ":" + texts for ids, texts in pairs)


def values_calls_and_parents(frame):
    rows = frame.orderBy("id").collect()
    parts = [row.label.split("|", 2) for row in rows]
    values = [(row.id, row.text, value) for row, (value, _, _) in zip(rows, parts)]
    return values, {call for _, call, _ in parts}, {parent for _, _, parent in parts}


@pytest.mark.parametrize("function, arguments", [(relabel_ids, ["id"]), (relabel_pairs, ["id", "text"])])
def test_iterator_pandas_udfs_run_in_the_executor_service_with_sparks_results(spark, function, arguments):
    from pyspark.sql.functions import pandas_udf

    spark.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", "97")
    try:
        query = numbers(spark).select("id", "text", pandas_udf(function, "string")(*arguments).alias("label"))
        assert "FlightPickleArrowEvalPython" in with_conf(spark, "spark.sql.adaptive.enabled", "false",
                                                          lambda: physical_plan(query))
        ours, our_calls, our_parents = values_calls_and_parents(query)
        stock, stock_calls, stock_parents = with_transport(spark, "spark", lambda: values_calls_and_parents(query))
    finally:
        spark.conf.unset("spark.sql.execution.arrow.maxRecordsPerBatch")
    assert ours == stock
    assert len(ours) == 5000 and ours[11] == ((11, "n11", "33") if function is relabel_ids else (11, "n11", "11:n11"))
    assert len(our_calls) == len(stock_calls) == 4, "the function is called once per task"
    assert all("flightpickle.executor serve" in parent for parent in our_parents), our_parents
    assert not any("flightpickle.executor" in parent for parent in stock_parents), stock_parents


def one_row_short(values: Iterator[pd.Series]) -> Iterator[pd.Series]:
    for series in values:
        yield series.iloc[1:]


def raise_on_seven_series(values: Iterator[pd.Series]) -> Iterator[pd.Series]:
    for series in values:
        if (series == 7).any():
            raise ValueError("seven is not welcome in this iterator")
        yield series


def test_an_iterator_pandas_udf_that_loses_rows_or_raises_fails_the_task_as_in_spark(spark):
    from pyspark.sql.functions import pandas_udf

    short = numbers(spark).select("id", pandas_udf(one_row_short, "long")("id"))
    for transport in ("local", "spark"):
        with pytest.raises(Exception) as failure:
            with_transport(spark, transport, short.collect)
        assert "RESULT_ROWS_MISMATCH" in str(failure.value), (transport, str(failure.value))
    raising = numbers(spark).select("id", pandas_udf(raise_on_seven_series, "long")("id"))
    assert_fails_with_traceback(raising.collect, "ValueError: seven is not welcome in this iterator", "raise_on_seven_series")


def mean_with_parent(values: pd.Series, texts: pd.Series) -> str:
    return f"{values.mean()}:{texts.min()}|{parent_command()}"


def means_and_parents(frame):
    rows = frame.orderBy("k").collect()
    pairs = [row.mean.split("|", 1) for row in rows]
    return [(row.k, row.plus, value) for row, (value, _) in zip(rows, pairs)], {parent for _, parent in pairs}


@pytest.mark.parametrize("grouped", [True, False], ids=["grouped by an expression", "one group"])
def test_a_grouped_aggregate_pandas_udf_runs_in_the_executor_service_with_sparks_results(spark, grouped):
    from pyspark.sql import functions as F
    from pyspark.sql.functions import pandas_udf

    mean_of = pandas_udf(mean_with_parent, "string")
    data = grouped_numbers(spark)
    keys = [(F.col("key") % 3).alias("k")] if grouped else []
    # The result expressions use the key and the UDF's value: both must come back joined.
    query = data.groupBy(*keys).agg(mean_of("id", "text").alias("mean"))
    query = query.select(F.col("k") if grouped else F.lit(0).alias("k"), (F.col("k") + 1 if grouped else F.lit(1)).alias("plus"), "mean")
    plan = with_conf(spark, "spark.sql.adaptive.enabled", "false", lambda: physical_plan(query))
    assert "FlightPickleArrowAggregatePython" in plan, plan
    ours, our_parents = means_and_parents(query)
    stock, stock_parents = with_transport(spark, "spark", lambda: means_and_parents(query))
    assert ours == stock and len(ours) == (3 if grouped else 1)
    assert all("flightpickle.executor serve" in parent for parent in our_parents), our_parents
    assert not any("flightpickle.executor" in parent for parent in stock_parents), stock_parents


def mean_unless_group_two(values: pd.Series) -> float:
    if values.min() >= 3000 and (values % 7 == 1).all():  # key 2 of grouped_numbers
        raise ValueError("group two has no mean here")
    return float(values.mean())


def test_a_grouped_aggregate_pandas_udf_that_raises_fails_the_task_with_its_python_traceback(spark):
    from pyspark.sql.functions import pandas_udf

    query = grouped_numbers(spark).groupBy("key").agg(pandas_udf(mean_unless_group_two, "double")("id"))
    assert_fails_with_traceback(query.collect, "ValueError: group two has no mean here", "mean_unless_group_two")


def test_what_a_grouped_aggregate_cannot_stream_stays_sparks_operator_and_the_reason_is_logged(spark):
    from pyspark.sql import functions as F
    from pyspark.sql.functions import pandas_udf

    @pandas_udf("double")
    def mean_of(values: pd.Series) -> float:
        return float(values.mean())

    query = grouped_numbers(spark).groupBy("key").agg(mean_of("id").alias("mean"), mean_of(F.col("id") * 2).alias("twice"))
    log = FallbackLog(spark)
    try:
        plan = with_conf(spark, "spark.sql.adaptive.enabled", "false", lambda: physical_plan(query))
        assert "ArrowAggregatePython" in plan and "FlightPickle" not in plan, plan
        reason = "ArrowAggregatePython stays Spark's operator: several pandas_udfs in one aggregation are not supported yet"
        assert reason in log.text(), log.text()
    finally:
        log.close()
    ours = sorted((row.key, row["mean"], row.twice) for row in query.collect())
    stock = with_transport(spark, "spark", lambda: sorted((row.key, row["mean"], row.twice) for row in query.collect()))
    assert ours == stock and len(ours) == 8


# applyInArrow, over the grouped data of applyInPandas: a function of a pyarrow.Table, of the key
# and a table, and the iterator forms of both (PySpark 4.x's documented signatures).
ARROW_GROUPED_OUTPUT = "key long, rows long, total long, first_text string, key_type string, parent string"


def arrow_summary(key: int, tables, key_type: str):
    import pyarrow as pa
    import pyarrow.compute as pc

    table = pa.concat_tables(tables)
    if key == 3:
        return []
    first = table.sort_by("id").column("text")[0].as_py()
    return [
        pa.table(
            {
                "key": [key],
                "rows": [table.num_rows],
                "total": [pc.sum(table.column("id")).as_py()],
                "first_text": [first],
                "key_type": [key_type],
                "parent": [parent_command()],
            }
        )
    ]


def arrow_one_table(tables):
    import pyarrow as pa

    return tables[0] if tables else pa.table({name: [] for name in ARROW_COLUMNS}).cast(ARROW_SCHEMA())


ARROW_COLUMNS = ("key", "rows", "total", "first_text", "key_type", "parent")


def ARROW_SCHEMA():  # noqa: N802 - pyarrow is imported where the function runs
    import pyarrow as pa

    return pa.schema([(n, pa.int64()) for n in ARROW_COLUMNS[:3]] + [(n, pa.string()) for n in ARROW_COLUMNS[3:]])


def summarize_table(table):
    return arrow_one_table(arrow_summary(table.column("key")[0].as_py(), [table], "none"))


def summarize_table_by_key(key, table):
    # Spark passes the key as a tuple of pyarrow scalars: their type must match too.
    return arrow_one_table(arrow_summary(key[0].as_py(), [table], type(key[0]).__name__))


def summarize_batches(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    # The type hints make it PySpark's iterator form (eval type 215).
    tables = [pa.Table.from_batches([batch]) for batch in batches]
    for table in arrow_summary(tables[0].column("key")[0].as_py(), tables, "none"):
        yield from table.to_batches()


def summarize_batches_by_key(key: Tuple[pa.Scalar, ...], batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    tables = [pa.Table.from_batches([batch]) for batch in batches]
    for table in arrow_summary(key[0].as_py(), tables, type(key[0]).__name__):
        yield from table.to_batches()


def arrow_rows_and_parents(frame):
    rows = frame.orderBy("key").collect()
    return [tuple(row)[:-1] for row in rows], {row.parent for row in rows}


@pytest.mark.parametrize(
    "function", [summarize_table, summarize_table_by_key, summarize_batches, summarize_batches_by_key]
)
def test_apply_in_arrow_runs_in_the_executor_service_with_sparks_results(spark, small_arrow_batches, function):
    query = grouped_numbers(spark).groupBy("key").applyInArrow(function, ARROW_GROUPED_OUTPUT)
    plan = with_conf(spark, "spark.sql.adaptive.enabled", "false", lambda: physical_plan(query))
    assert "FlightPickleFlatMapGroupsInArrow" in plan, plan
    ours, our_parents = arrow_rows_and_parents(query)
    stock, stock_parents = with_transport(spark, "spark", lambda: arrow_rows_and_parents(query))
    assert ours == stock
    assert [row[0] for row in ours] == [k for k in range(8) if k != 3]
    # Group 0 came whole, though larger than a batch: 3,000 rows, starting at n0.
    assert ours[0][:4] == (0, 3000, sum(range(3000)), "n0")
    if "by_key" in function.__name__:
        assert ours[0][4] == "Int64Scalar"
    assert all("flightpickle.executor serve" in parent for parent in our_parents), our_parents
    assert not any("flightpickle.executor" in parent for parent in stock_parents), stock_parents


def arrow_batch_sizes(key: Tuple[pa.Scalar, ...], batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    sizes = [batch.num_rows for batch in batches]
    yield pa.RecordBatch.from_pydict({"key": [key[0].as_py()], "sizes": [",".join(map(str, sizes))]})


def test_apply_in_arrow_of_an_iterator_gets_each_group_in_batches_of_max_records_per_batch(spark):
    query = grouped_numbers(spark).groupBy("key").applyInArrow(arrow_batch_sizes, "key long, sizes string")

    def sizes_by_key():
        return [tuple(row) for row in query.orderBy("key").collect()]

    def under_small_batches(run):
        return with_conf(spark, "spark.sql.execution.arrow.maxRecordsPerBatch", "97", run)

    plan = under_small_batches(lambda: with_conf(spark, "spark.sql.adaptive.enabled", "false", lambda: physical_plan(query)))
    assert "FlightPickleFlatMapGroupsInArrow" in plan, plan
    ours = under_small_batches(sizes_by_key)
    stock = under_small_batches(lambda: with_transport(spark, "spark", sizes_by_key))
    assert ours == stock
    # Group 0's 3,000 rows: 30 batches of 97 rows, then the 90 left.
    assert ours[0] == (0, ",".join(["97"] * 30 + ["90"]))


def raise_on_arrow_group_two(table):
    if table.column("key")[0].as_py() == 2:
        raise ValueError("group two is not welcome in Arrow either")
    return table.select(["key"])


def test_an_apply_in_arrow_function_that_raises_fails_the_task_with_its_python_traceback(spark):
    query = grouped_numbers(spark).groupBy("key").applyInArrow(raise_on_arrow_group_two, "key long")
    assert_fails_with_traceback(query.collect, "ValueError: group two is not welcome in Arrow either",
                                "raise_on_arrow_group_two")


def keys_only(table):
    return table.select(["key"])


@pytest.mark.parametrize(
    "schema, error", [("key long, missing long", "RESULT_COLUMN_NAMES_MISMATCH"), ("key string", "RESULT_COLUMN_TYPES_MISMATCH")]
)
def test_an_apply_in_arrow_result_that_does_not_fit_the_schema_fails_as_in_spark(spark, schema, error):
    query = grouped_numbers(spark).groupBy("key").applyInArrow(keys_only, schema)
    assert "FlightPickleFlatMapGroupsInArrow" in with_conf(spark, "spark.sql.adaptive.enabled", "false",
                                                          lambda: physical_plan(query))
    with pytest.raises(Exception) as failure:  # PySpark's check fails it, after the function returned
        query.collect()
    assert "flightpickle executor service" in str(failure.value) and error in str(failure.value)
    with pytest.raises(Exception, match=error):
        with_transport(spark, "spark", lambda: query.orderBy("key").collect())  # a new plan, Spark's


def first_id(table):
    return table.select(["id"]).slice(0, 1)


def test_apply_in_arrow_grouped_by_an_expression_stays_sparks_operator_and_the_reason_is_logged(spark):
    data = grouped_numbers(spark)
    query = data.groupBy(data.id % 3).applyInArrow(first_id, "id long")
    log = FallbackLog(spark)
    try:
        plan = with_conf(spark, "spark.sql.adaptive.enabled", "false", lambda: physical_plan(query))
        assert "FlatMapGroupsInArrow" in plan and "FlightPickle" not in plan, plan
        reason = "FlatMapGroupsInArrow stays Spark's operator: it groups by an expression"
        assert reason in log.text(), log.text()
    finally:
        log.close()
    assert len(query.collect()) == 3
