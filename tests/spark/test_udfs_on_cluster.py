"""UDFs and RDD functions pickled by flightpickle run on two executor JVMs."""

from __future__ import annotations

import os
import pickle
import sys
import time

import pytest

import flightpickle
import flightpickle.spark
import unpickle_counter
from driver_only_modules import scaling_modules
from support import imported_globals, project_version, sealed_frame

pytestmark = pytest.mark.spark

THRESHOLD = 10
SPARK_CONF = {
    # Workers fork from flightpickle's daemon, which preloads it.
    "spark.python.daemon.module": "flightpickle.spark.daemon",
    # A module missing on executors should fail its job at once, not after retries.
    "spark.task.maxFailures": "1",
    "spark.flightpickle.pickleByValue": "fp_conf_helpers",
}


@pytest.fixture(scope="module", autouse=True)
def by_value_test_modules():
    """Executors cannot import the tests' modules, so ship them by value, as a notebook would."""
    modules = [sys.modules[__name__], unpickle_counter]
    for module in modules:
        flightpickle.register_pickle_by_value(module)
    yield
    for module in modules:
        flightpickle.unregister_pickle_by_value(module)


@pytest.fixture
def hooked(spark, local_modules):
    flightpickle.spark.enable(spark)  # imports the module named in spark.flightpickle.pickleByValue
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


def test_commands_are_sealed_payloads(hooked):
    from pyspark.core.rdd import _prepare_for_python_RDD
    from pyspark.sql.types import LongType

    offset = 3
    command, _, _, _ = _prepare_for_python_RDD(hooked.sparkContext, (lambda x: x + offset, LongType()))
    assert imported_globals(command) == {"flightpickle.sealing.load_sealed"}
    inner = flightpickle.inspect_payload(sealed_frame(command))
    assert inner.sealed.python[1:] == tuple(sys.version_info[:2])
    # One call makes the lambda, its code and its closure (`offset`).
    assert set(inner.globals) == {
        "flightpickle._new_function",
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


def test_pyspark_target_writes_plain_pickles_for_stock_workers(spark):
    from pyspark.core.rdd import _prepare_for_python_RDD
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    flightpickle.spark.enable(spark, target="pyspark")
    try:
        offset = 5
        command, _, _, _ = _prepare_for_python_RDD(spark.sparkContext, (lambda x: x + offset, T.LongType()))
        assert all(name.startswith("pyspark.") for name in imported_globals(command)), imported_globals(command)
        rows = spark.range(0, 20, numPartitions=2).select(F.udf(lambda n: n + offset, T.LongType())("id").alias("v"))
        assert sorted(r.v for r in rows.collect()) == [n + 5 for n in range(20)]
    finally:
        flightpickle.spark.disable()
    with pytest.raises(ValueError, match="seal=False"):
        flightpickle.spark.enable(spark, target="pyspark", seal=True)


@pytest.fixture(scope="module")
def local_modules(tmp_path_factory):
    """Two modules importable on the driver only, like files next to a notebook."""
    folder = tmp_path_factory.mktemp("project")
    with scaling_modules(folder, {"fp_local_helpers": 3, "fp_conf_helpers": 4}) as modules:
        yield modules


def scaled_sum(spark, module) -> int:
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    return spark.range(0, 10, numPartitions=2).select(F.udf(module.scale, T.LongType())("id").alias("v")).agg(
        F.sum("v")
    ).first()[0]


def test_local_module_fails_on_executors_unless_shipped(spark, local_modules):
    helpers, _ = local_modules
    flightpickle.spark.enable(spark)
    try:
        with pytest.raises(Exception, match="No module named 'fp_local_helpers'"):
            scaled_sum(spark, helpers)
        flightpickle.spark.pickle_by_value("fp_local_helpers")
        assert scaled_sum(spark, helpers) == 3 * 45
    finally:
        flightpickle.unregister_pickle_by_value(helpers)
        flightpickle.spark.disable()


def test_conf_names_modules_to_ship(spark, local_modules):
    _, conf_helpers = local_modules
    flightpickle.spark.enable(spark)  # reads spark.flightpickle.pickleByValue
    try:
        assert "fp_conf_helpers" in flightpickle.list_registry_pickle_by_value()
        assert scaled_sum(spark, conf_helpers) == 4 * 45
    finally:
        flightpickle.unregister_pickle_by_value(conf_helpers)
        flightpickle.spark.disable()


def test_local_module_policy_finds_and_ships_project_files(spark, local_modules):
    helpers, _ = local_modules
    flightpickle.spark.enable(spark, pickle_local_modules=True)
    try:
        assert scaled_sum(spark, helpers) == 3 * 45
        # The registry is only borrowed for the length of each command's dump.
        assert "fp_local_helpers" not in flightpickle.list_registry_pickle_by_value()
    finally:
        flightpickle.spark.disable()


def test_reused_workers_unpickle_a_command_once(hooked):
    import numpy as np
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    size = 20 * 1024 * 1024
    payload = unpickle_counter.CountedPayload(np.random.default_rng(0).bytes(size))
    report = unpickle_counter.probe(payload)

    before = flightpickle.spark.stats().broadcast_commands
    rows = hooked.range(0, 50, numPartitions=50).select(F.udf(report, T.StringType())("id").alias("p")).collect()
    per_worker = unpickle_counter.unpickles_per_worker([row.p for row in rows], size)
    assert flightpickle.spark.stats().broadcast_commands == before + 1  # 20 MB: the broadcast path
    assert per_worker and all(count == 1 for count in per_worker.values()), per_worker
    assert len(per_worker) < len(rows), "no worker ran two tasks: the cache was not exercised"


def test_udf_capturing_the_session_fails_on_the_driver_with_its_path(hooked):
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    session = hooked
    leaky = F.udf(lambda n: session.version, T.StringType())
    with pytest.raises(pickle.PicklingError) as failure:
        hooked.range(3).select(leaky("id")).collect()
    # The command is (function, return type); the session's SparkContext is what refuses.
    assert str(failure.value).startswith("Could not pickle obj[0].__closure__[0].cell_contents._sc: ")
    assert "SparkContext can only be used on the driver" in str(failure.value)
