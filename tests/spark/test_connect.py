"""flightpickle through Spark Connect: a real Connect server, this process a pure client.

The server (``connect_server``) runs Spark's ``SparkConnectServer`` on
``local-cluster[2,1,1024]`` with the plugin jar and flightpickle's daemon
module; this process talks to it over gRPC only and has no SparkContext.
"""

from __future__ import annotations

import sys

import pytest

import flightpickle
import flightpickle.spark
import udf_kinds
import unpickle_counter
from connect_server import connect_session
from driver_only_modules import scaling_modules
from support import imported_globals, sealed_frame
from udf_kinds import CONNECT_QUERIES, stock_and_flightpickle_rows

pytestmark = pytest.mark.spark

SERVER_CONF = {
    "spark.python.daemon.module": "flightpickle.spark.daemon",
    # A module missing on executors should fail its job at once, not after retries.
    "spark.task.maxFailures": "1",
}
COMMAND_MESSAGES = ("PythonUDF", "PythonUDTF")


@pytest.fixture(scope="module")
def spark(tmp_path_factory):
    with connect_session(tmp_path_factory.mktemp("connect") / "server.log", SERVER_CONF) as session:
        yield session


@pytest.fixture(scope="module", autouse=True)
def by_value_test_code():
    """Executors cannot import the tests' modules: both picklers ship them by value."""
    from pyspark import cloudpickle

    modules = [udf_kinds, unpickle_counter, sys.modules[__name__]]
    for module in modules:
        flightpickle.register_pickle_by_value(module)
        cloudpickle.register_pickle_by_value(module)
    yield
    for module in modules:
        flightpickle.unregister_pickle_by_value(module)
        cloudpickle.unregister_pickle_by_value(module)


@pytest.fixture
def hooked(spark):
    flightpickle.spark.enable(spark)
    yield spark
    flightpickle.spark.disable()


def test_this_process_is_a_connect_client(spark):
    from pyspark.sql.connect.session import SparkSession as ConnectSession

    assert isinstance(spark, ConnectSession)
    assert spark.range(3).count() == 3


@pytest.mark.parametrize("query", CONNECT_QUERIES, ids=[q.__name__ for q in CONNECT_QUERIES])
def test_same_rows_as_stock_pyspark(spark, query):
    stock, ours = stock_and_flightpickle_rows(spark, query)
    assert ours == stock
    assert stock, "an empty result would compare equal without testing anything"


def plan_commands(df) -> list[bytes]:
    """The pickled commands in the plan the client sends to the server for ``df``."""
    plan = df._plan.to_proto(df.sparkSession.client)
    found = []
    pending = [plan]
    while pending:
        message = pending.pop()
        for field, value in message.ListFields():
            if field.name == "command" and message.DESCRIPTOR.name in COMMAND_MESSAGES:
                found.append(value)
            elif field.message_type is not None:
                pending.extend(value if field.is_repeated else [value])
    return found


def kinds_of_commands(spark):
    """A DataFrame per path: a UDF expression, a map over pandas, a grouped map, a UDTF."""
    from pyspark.sql import functions as F
    from pyspark.sql.functions import udtf

    offset = 3

    @udtf(returnType="n: int")
    class Count:
        def eval(self, upto: int):
            for n in range(upto):
                yield (n,)

    frames = spark.range(10).withColumn("k", F.col("id") % 2)
    return {
        "udf": spark.range(5).select(F.udf(lambda n: n + offset, "long")("id")),
        "mapInPandas": spark.range(5).mapInPandas(lambda it: (f + offset for f in it), "id long"),
        "applyInPandas": frames.groupBy("k").applyInPandas(lambda f: f.head(1), "id long, k long"),
        "udtf": Count(F.lit(4)),
    }


def test_commands_sent_to_the_server_are_sealed(hooked):
    for kind, df in kinds_of_commands(hooked).items():
        commands = plan_commands(df)
        assert commands, f"{kind}: no pickled command in the plan"
        for command in commands:
            assert imported_globals(command) == {"flightpickle.sealing.load_sealed"}, kind
            inner = flightpickle.inspect_payload(sealed_frame(command))
            assert inner.sealed.python[1:] == tuple(sys.version_info[:2]), kind
        assert df.collect(), f"{kind}: the sealed command gave no rows"


def test_disable_restores_the_connect_client_exactly(spark):
    import pyspark.sql.connect.expressions as expressions
    import pyspark.sql.connect.plan as plan
    import pyspark.sql.connect.streaming.readwriter as streaming

    modules = (expressions, plan, streaming)
    originals = [module.CloudPickleSerializer for module in modules]
    flightpickle.spark.enable(spark)
    flightpickle.spark.enable(spark)  # twice is harmless
    for module, original in zip(modules, originals):
        assert module.CloudPickleSerializer is not original, module.__name__
    flightpickle.spark.disable()
    assert [module.CloudPickleSerializer for module in modules] == originals

    for kind, df in kinds_of_commands(spark).items():
        for command in plan_commands(df):
            names = imported_globals(command)
            assert not any(name.startswith("flightpickle") for name in names), (kind, names)


def test_pyspark_target_read_from_the_session_conf(spark):
    from pyspark.sql import functions as F

    spark.conf.set("spark.flightpickle.target", "pyspark")
    try:
        flightpickle.spark.enable(spark)  # reads the conf through the server
        before = flightpickle.spark.stats().commands
        df = spark.range(6).select(F.udf(lambda n: n * 2, "long")("id").alias("v"))
        (command,) = plan_commands(df)
        assert all(name.startswith("pyspark.") for name in imported_globals(command)), imported_globals(command)
        assert sorted(r.v for r in df.collect()) == [n * 2 for n in range(6)]
        assert flightpickle.spark.stats().commands > before
    finally:
        flightpickle.spark.disable()
        spark.conf.unset("spark.flightpickle.target")


@pytest.fixture(scope="module")
def local_module(tmp_path_factory):
    with scaling_modules(tmp_path_factory.mktemp("project"), {"fp_connect_helpers": 5}) as (module,):
        yield module


def scaled_sum(spark, module) -> int:
    from pyspark.sql import functions as F

    values = spark.range(0, 10, numPartitions=2).select(F.udf(module.scale, "long")("id").alias("v"))
    return values.agg(F.sum("v")).first()[0]


def test_local_module_fails_on_executors_unless_shipped_by_value(spark, local_module):
    flightpickle.spark.enable(spark)
    try:
        with pytest.raises(Exception, match="No module named 'fp_connect_helpers'"):
            scaled_sum(spark, local_module)
        flightpickle.spark.pickle_by_value(local_module)
        assert scaled_sum(spark, local_module) == 5 * 45
    finally:
        flightpickle.unregister_pickle_by_value(local_module)
        flightpickle.spark.disable()


def test_local_module_policy_ships_project_files_over_connect(spark, local_module):
    flightpickle.spark.enable(spark, pickle_local_modules=True)
    try:
        assert scaled_sum(spark, local_module) == 5 * 45
        assert "fp_connect_helpers" not in flightpickle.list_registry_pickle_by_value()
    finally:
        flightpickle.spark.disable()


def test_reused_workers_unpickle_an_inlined_command_once(hooked):
    """Connect inlines the command in every task; the workers' cache still opens it once."""
    import numpy as np
    from pyspark.sql import functions as F

    size = 4 * 1024 * 1024
    payload = unpickle_counter.CountedPayload(np.random.default_rng(1).bytes(size))
    report = unpickle_counter.probe(payload)
    rows = hooked.range(0, 20, numPartitions=20).select(F.udf(report, "string")("id").alias("p")).collect()
    per_worker = unpickle_counter.unpickles_per_worker([row.p for row in rows], size)
    assert per_worker and all(count == 1 for count in per_worker.values()), per_worker
    assert len(per_worker) < len(rows), "no worker ran two tasks: the cache was not exercised"


def test_python_data_source_goes_through_flightpickle(hooked):
    from pyspark.sql.datasource import DataSource, DataSourceReader

    limit = 6

    class SquaresReader(DataSourceReader):
        def read(self, partition):
            for n in range(limit):
                yield n, n * n

    class Squares(DataSource):
        @classmethod
        def name(cls):
            return "fp_squares"

        def schema(self):
            return "n int, square int"

        def reader(self, schema):
            return SquaresReader()

    before = flightpickle.spark.stats().commands
    hooked.dataSource.register(Squares)
    assert flightpickle.spark.stats().commands > before, "the data source was not pickled by flightpickle"
    rows = hooked.read.format("fp_squares").load().collect()
    assert sorted(tuple(row) for row in rows) == [(n, n * n) for n in range(limit)]


@pytest.fixture
def json_stream(hooked, tmp_path):
    """A streaming DataFrame over ten JSON rows ``{"n": 0..9}``, and a checkpoint directory."""
    source = tmp_path / "in"
    source.mkdir()
    (source / "part-0.json").write_text("\n".join(f'{{"n": {n}}}' for n in range(10)))
    return hooked.readStream.schema("n long").json(str(source)), str(tmp_path / "checkpoint")


def run_to_end(writer, checkpoint: str) -> None:
    query = writer.trigger(availableNow=True).option("checkpointLocation", checkpoint).start()
    assert query.awaitTermination(180), "the streaming query did not finish in time"
    assert query.exception() is None, query.exception()


def test_streaming_foreach_batch_goes_through_flightpickle(hooked, json_stream, tmp_path):
    stream, checkpoint = json_stream
    out = tmp_path / "batches"
    out.mkdir()
    offset = 100

    def write_batch(batch_df, batch_id):  # runs in a Python process of the server
        values = [row.n + offset for row in batch_df.collect()]
        (out / f"batch-{batch_id}").write_text(",".join(map(str, values)))

    before = flightpickle.spark.stats().commands
    run_to_end(stream.writeStream.foreachBatch(write_batch), checkpoint)
    assert flightpickle.spark.stats().commands == before + 1
    written = sorted(int(v) for path in out.iterdir() for v in path.read_text().split(",") if v)
    assert written == [n + offset for n in range(10)]


def test_streaming_foreach_goes_through_flightpickle(hooked, json_stream, tmp_path):
    stream, checkpoint = json_stream
    out = tmp_path / "rows"
    out.mkdir()

    def write_row(row):  # runs in the executors' Python workers
        (out / f"row-{row.n}").write_text(str(row.n * 3))

    before = flightpickle.spark.stats().commands
    run_to_end(stream.writeStream.foreach(write_row), checkpoint)
    assert flightpickle.spark.stats().commands == before + 1
    assert sorted(int(path.read_text()) for path in out.iterdir()) == [n * 3 for n in range(10)]
