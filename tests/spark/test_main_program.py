"""UDFs defined in ``__main__`` give the same rows with flightpickle as with stock PySpark.

A pytest module is never ``__main__``, so the driver is a program of its own,
``main_program/udfs_in_main.py``, run by this venv's Python in a subprocess on
``local-cluster[2,1,1024]`` with the plugin jar; it writes each pass's rows as
JSON, and the tests here compare them. The program runs once per module.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from spark_cluster import JVM_FAST_START, MASTER, PLUGIN, spark_test_environment
from support import plugin_jar

pytestmark = pytest.mark.spark

PROGRAM = Path(__file__).parent / "main_program" / "udfs_in_main.py"
PROGRAM_SECONDS = 780
FLIGHTPICKLE_PASSES = ("registered", "policy")
BROADCAST_KINDS = ("scalar_udf_capturing_array", "pandas_udf_capturing_array")
KINDS = (
    "scalar_udf",
    "scalar_udf_without_arrow",
    "pandas_scalar_udf",
    "pandas_iterator_udf",
    "pandas_grouped_agg_udf",
    "map_in_arrow",
    "map_in_pandas",
    "apply_in_pandas",
    "cogroup_apply_in_pandas",
    "registered_sql_udf",
    "python_udtf",
    "rdd_functions",
    *BROADCAST_KINDS,
)


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """Run the program once; its JSON results, or a failure showing its output's tail."""
    folder = tmp_path_factory.mktemp("main_program")
    conf = {
        "spark.master": MASTER,
        "spark.jars": str(plugin_jar()),
        "spark.plugins": PLUGIN,
        "spark.python.daemon.module": "flightpickle.spark.daemon",
        # The stock pass needs PySpark's own pickling; the program enables flightpickle
        # itself for its other passes, so the plugin must not do it at start.
        "spark.flightpickle.python.enabled": "false",
        "spark.executor.memory": "512m",
        "spark.driver.extraJavaOptions": JVM_FAST_START,
        "spark.executor.extraJavaOptions": JVM_FAST_START,
        "spark.ui.enabled": "false",
        "spark.sql.shuffle.partitions": "4",
        # The unshipped module must fail its job at once, not after retries.
        "spark.task.maxFailures": "1",
        # The first job waits for both executors.
        "spark.scheduler.minRegisteredResourcesRatio": "1.0",
        "spark.scheduler.maxRegisteredResourcesWaitingTime": "180s",
    }
    (folder / "conf.json").write_text(json.dumps(conf))
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPARK_CONNECT") and k != "SPARK_REMOTE"}
    env.update(spark_test_environment())
    finished = subprocess.run(
        [sys.executable, str(PROGRAM), str(folder / "results.json"), str(folder / "conf.json")],
        cwd=folder,  # not the program's folder: only the program itself puts that on sys.path
        env=env,
        capture_output=True,
        text=True,
        timeout=PROGRAM_SECONDS,
    )
    assert finished.returncode == 0, finished.stdout[-3000:] + finished.stderr[-5000:]
    return json.loads((folder / "results.json").read_text())


def test_every_kind_ran_in_every_pass(results):
    for name in ("stock", *FLIGHTPICKLE_PASSES):
        assert tuple(results[name]) == KINDS, name
        empty = [kind for kind, result in results[name].items() if not result["rows"]]
        assert not empty, f"{name}: no rows for {empty}, which would compare equal without testing anything"


@pytest.mark.parametrize("name", FLIGHTPICKLE_PASSES)
@pytest.mark.parametrize("kind", KINDS)
def test_same_rows_as_stock_pyspark(results, name, kind):
    assert results[name][kind]["rows"] == results["stock"][kind]["rows"]
    assert results[name][kind]["commands"] >= 1, "the kind did not go through flightpickle"


@pytest.mark.parametrize("name", FLIGHTPICKLE_PASSES)
def test_udfs_capturing_ten_megabytes_travel_as_broadcasts(results, name):
    for kind in KINDS:
        broadcasts = results[name][kind]["broadcasts"]
        assert (broadcasts >= 1) == (kind in BROADCAST_KINDS), (kind, broadcasts)


def test_the_project_module_is_not_importable_on_executors(results):
    # Otherwise shipping it by value would prove nothing.
    assert "No module named 'project_scaling'" in results["unshipped_error"], results["unshipped_error"][-2000:]
