"""UDFs and RDD functions pickled by flightpickle run on two executor JVMs."""

from __future__ import annotations

import os
import sys
import time

import pytest

import flightpickle
import flightpickle.spark
from support import imported_globals, project_version

pytestmark = pytest.mark.spark

THRESHOLD = 10


@pytest.fixture(scope="module", autouse=True)
def by_value_test_module():
    """Executors cannot import this test module, so ship it by value, as a notebook would."""
    module = sys.modules[__name__]
    flightpickle.register_pickle_by_value(module)
    yield
    flightpickle.unregister_pickle_by_value(module)


@pytest.fixture
def hooked(spark):
    flightpickle.spark.enable(spark)
    yield spark
    flightpickle.spark.disable()


def executor_jvm_pid() -> int:
    """Pid of the executor JVM above this Python worker (worker -> daemon -> JVM)."""
    pid = os.getpid()
    while pid > 1:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            if b"CoarseGrainedExecutorBackend" in f.read():
                return pid
        with open(f"/proc/{pid}/stat") as f:
            pid = int(f.read().rsplit(")", 1)[1].split()[1])
    raise RuntimeError("not running under an executor JVM")


def test_plugin_loaded_the_native_core_in_every_executor(spark):
    # An executor registers with the driver before its plugin reports, so wait a little.
    plugin = spark._jvm.io.flightpickle.spark.FlightPicklePlugin
    deadline = time.monotonic() + 60
    while len(reports := dict(plugin.nativeCoreReports())) < 2 and time.monotonic() < deadline:
        time.sleep(0.5)
    assert sorted(reports) == ["0", "1"], reports
    assert all(f"core {project_version()}" in report for report in reports.values()), reports


def test_commands_name_flightpickle_reconstructors(hooked):
    from pyspark.core.rdd import _prepare_for_python_RDD
    from pyspark.sql.types import LongType

    offset = 3
    command, _, _, _ = _prepare_for_python_RDD(hooked.sparkContext, (lambda x: x + offset, LongType()))
    assert imported_globals(command) == {
        "flightpickle._reconstruct.make_function",
        "flightpickle._reconstruct.function_setstate",
        "flightpickle._reconstruct.builtin_type",
        "flightpickle._reconstruct.make_cell",  # `offset` is a closure variable
        "flightpickle._reconstruct.make_empty_cell",
        "pyspark.sql.types.LongType",
    }


def test_lambda_closure_and_local_class_udfs(hooked):
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    class Bucket:
        def __init__(self, size):
            self.size = size

        def of(self, n):
            return n // self.size

    def make_above(limit):
        return lambda n: n > limit + THRESHOLD

    before = flightpickle.spark.stats().commands
    df = hooked.range(0, 200, numPartitions=8).select(
        "id",
        F.udf(lambda n: n * 3, T.LongType())("id").alias("triple"),
        F.udf(make_above(5), T.BooleanType())("id").alias("above"),
        F.udf(lambda n: Bucket(7).of(n), T.LongType())("id").alias("bucket"),
        F.udf(lambda _: executor_jvm_pid(), T.LongType())("id").alias("jvm"),
    )
    rows = df.orderBy("id").collect()

    assert [(r.triple, r.above, r.bucket) for r in rows] == [
        (n * 3, n > 15, n // 7) for n in range(200)
    ]
    assert len({r.jvm for r in rows}) == 2, "expected work on both executor JVMs"
    assert flightpickle.spark.stats().commands - before >= 4


def test_rdd_functions_go_through_flightpickle(hooked):
    scale = 10
    before = flightpickle.spark.stats().commands
    rdd = hooked.sparkContext.parallelize(range(100), 4)
    total = rdd.map(lambda n: n * scale).filter(lambda n: n % 20 == 0).sum()
    assert total == sum(n * scale for n in range(100) if (n * scale) % 20 == 0)
    assert flightpickle.spark.stats().commands > before


def test_large_commands_travel_as_broadcasts(hooked):
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    lookup = {n: n * n for n in range(200_000)}  # well over the 1 MiB broadcast threshold
    before = flightpickle.spark.stats().broadcast_commands
    rows = hooked.range(0, 50, numPartitions=2).select(
        F.udf(lambda n: lookup[n], T.LongType())("id").alias("sq")
    ).collect()
    assert sorted(r.sq for r in rows) == [n * n for n in range(50)]
    assert flightpickle.spark.stats().broadcast_commands == before + 1


def test_disable_restores_pyspark_pickling(spark):
    import pyspark.core.rdd as rdd_module
    from pyspark.sql.types import LongType

    original = rdd_module._prepare_for_python_RDD
    flightpickle.spark.enable(spark)
    flightpickle.spark.enable(spark)  # twice is harmless
    assert rdd_module._prepare_for_python_RDD is not original
    flightpickle.spark.disable()
    assert rdd_module._prepare_for_python_RDD is original
    assert not flightpickle.spark.is_enabled()

    command, _, _, _ = rdd_module._prepare_for_python_RDD(spark.sparkContext, (lambda x: x, LongType()))
    assert "pyspark.cloudpickle.cloudpickle._make_function" in imported_globals(command)
    assert not any(name.startswith("flightpickle") for name in imported_globals(command))
