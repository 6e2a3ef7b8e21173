"""The plugin through spark-submit on local-cluster[2,1,1024], as a user runs it.

Each test submits one application (one cluster at a time) with nothing but the
jar and the ``spark.plugins`` line besides the test's own confs, and reads what
the application printed and what Spark's metrics system wrote (a CSV sink).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from spark_cluster import JVM_FAST_START, MASTER, PLUGIN, spark_test_environment
from support import plugin_jar

pytestmark = pytest.mark.spark

APPS = Path(__file__).parent / "apps"
METRIC_PREFIX = "plugin.io.flightpickle.spark.FlightPicklePlugin."


def run_submit(app: str, metrics_dir: Path, *confs: str) -> subprocess.CompletedProcess:
    spark_submit = Path(sys.executable).parent / "spark-submit"
    command = [
        str(spark_submit), "--master", MASTER,
        "--jars", str(plugin_jar()),
        "--conf", f"spark.plugins={PLUGIN}",
        "--conf", "spark.executor.memory=512m",
        "--conf", f"spark.driver.extraJavaOptions={JVM_FAST_START}",
        "--conf", f"spark.executor.extraJavaOptions={JVM_FAST_START}",
        "--conf", "spark.ui.enabled=false",
        "--conf", "spark.log.level=WARN",
        "--conf", "spark.metrics.conf.*.sink.csv.class=org.apache.spark.metrics.sink.CsvSink",
        "--conf", "spark.metrics.conf.*.sink.csv.period=1",
        "--conf", "spark.metrics.conf.*.sink.csv.unit=seconds",
        "--conf", f"spark.metrics.conf.*.sink.csv.directory={metrics_dir}",
    ]
    for conf in confs:
        command += ["--conf", conf]
    command.append(str(APPS / app))
    env = {**os.environ, **spark_test_environment()}
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)


def submit(app: str, metrics_dir: Path, *confs: str) -> dict[str, str]:
    """Submit an app that must succeed; what it printed as ``RESULT key=value`` lines."""
    result = run_submit(app, metrics_dir, *confs)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    return dict(re.findall(r"^RESULT (\w+)=(.*)$", result.stdout, re.MULTILINE))


def metric(metrics_dir: Path, instance: str, name: str) -> float | None:
    """The last value Spark's CSV sink wrote for a plugin metric of one instance, or None."""
    for path in metrics_dir.glob(f"*.{instance}.{METRIC_PREFIX}{name}.csv"):
        lines = path.read_text().strip().splitlines()
        if len(lines) > 1:
            return float(lines[-1].split(",")[1])
    return None


def test_one_conf_line_enables_flightpickle_on_the_driver_and_both_executors(tmp_path):
    results = submit("plugin_app.py", tmp_path)
    assert results["correct"] == "True"
    assert results["loaded_by_hook"] == "True"
    assert results["enabled"] == "True"
    assert int(results["commands"]) >= 2
    assert results["daemon"] == "flightpickle.spark.daemon"
    assert metric(tmp_path, "driver", "nativeCore.loaded") == 1
    assert metric(tmp_path, "driver", "commands.seen") >= 2
    assert metric(tmp_path, "driver", "commands.payloadBytes") > 0
    assert metric(tmp_path, "driver", "commands.refused") == 0
    for executor in ("0", "1"):
        assert metric(tmp_path, executor, "nativeCore.loaded") == 1, sorted(p.name for p in tmp_path.iterdir())
        assert metric(tmp_path, executor, "tasks.started") is not None
    # 8 tasks each open the two UDF commands; a reused worker takes them from its cache.
    hits = [metric(tmp_path, executor, "pythonWorkers.cacheHits") for executor in ("0", "1")]
    misses = [metric(tmp_path, executor, "pythonWorkers.cacheMisses") for executor in ("0", "1")]
    assert None not in hits + misses, sorted(p.name for p in tmp_path.iterdir())
    assert sum(hits) + sum(misses) >= 16, (hits, misses)
    assert sum(misses) >= 2 and sum(hits) >= 1, (hits, misses)


def test_require_signed_and_allowed_modules_refuse_at_analysis(tmp_path):
    results = submit(
        "policy_app.py", tmp_path,
        "spark.authenticate.secret=a-secret-for-the-test",
        "spark.flightpickle.requireSigned=true",
        "spark.flightpickle.allowedModules=math",
    )
    assert results["enabled"] == "True"
    assert results["unsigned"] == "refused"
    assert "flightpickle refused the Python UDF 'leave_marker'" in results["unsigned_message"]
    assert "not a sealed, signed flightpickle payload" in results["unsigned_message"]
    assert results["markers_after_refusal"] == "0"
    assert results["signed_correct"] == "True"
    assert results["os"] == "refused"
    assert "flightpickle refused the Python UDF '<lambda>': its command imports os," in results["os_message"]
    assert results["key_in_conf"] == "False"
    assert metric(tmp_path, "driver", "commands.refused") >= 2
    assert metric(tmp_path, "driver", "commands.verifyTime") >= 2


def test_an_invalid_conf_fails_the_start_with_a_message_naming_it(tmp_path):
    result = run_submit(
        "plugin_app.py", tmp_path,
        "spark.flightpickle.requireSigned=yes",
        "spark.flightpickle.alowedModules=math",
    )
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "invalid flightpickle configuration" in output, output[-5000:]
    assert "spark.flightpickle.requireSigned=yes is not a boolean; use true or false" in output
    assert "(did you mean spark.flightpickle.allowedModules?)" in output
    assert "RESULT" not in result.stdout


def test_transport_local_runs_a_submitted_apps_udfs_in_the_executor_service(tmp_path):
    """A user's app, unchanged, with one more conf line: each kind gives its rows through flightpickle's operator."""
    results = submit("sql_app.py", tmp_path, "spark.flightpickle.transport=local")
    for kind in ("udf", "pandas_udf", "map_in_arrow", "apply_in_pandas"):
        assert results[f"{kind}_correct"] == "True", (kind, results)
        assert results[f"{kind}_operator"] == "True", (kind, results)
