"""How the Spark tests run a cluster: shared by the fixtures and the servers they start."""

from __future__ import annotations

import os
import sys

MASTER = "local-cluster[2,1,1024]"
EXECUTORS = 2
PLUGIN = "io.flightpickle.spark.FlightPicklePlugin"
# Serial GC and C1-only JIT halve JVM start-up on a two-core machine.
JVM_FAST_START = "-XX:+UseSerialGC -XX:TieredStopAtLevel=1"


def spark_test_environment() -> dict[str, str]:
    """Environment that keeps Spark on loopback with this venv's Python."""
    return {
        "SPARK_LOCAL_IP": os.environ.get("SPARK_LOCAL_IP", "127.0.0.1"),
        "PYSPARK_PYTHON": sys.executable,
        "PYSPARK_DRIVER_PYTHON": sys.executable,
    }


def cluster_conf(jar: str) -> dict[str, str]:
    """Confs of a session on the tests' cluster with the plugin jar at ``jar``."""
    return {
        "spark.master": MASTER,
        "spark.jars": jar,
        "spark.plugins": PLUGIN,
        "spark.executor.memory": "512m",
        "spark.driver.extraJavaOptions": JVM_FAST_START,
        "spark.executor.extraJavaOptions": JVM_FAST_START,
        "spark.ui.enabled": "false",
        "spark.sql.shuffle.partitions": "4",
    }
