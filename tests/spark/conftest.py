"""One real ``local-cluster[2,1,1024]`` Spark session per test module.

Two executor JVMs, each with its own Python workers from this venv, and the
flightpickle plugin jar on the classpath. Starting a cluster costs tens of
seconds on two cores, so modules share theirs across tests.
"""

from __future__ import annotations

import os
import time

import pytest

from spark_cluster import EXECUTORS, cluster_conf, spark_test_environment
from support import plugin_jar

EXECUTOR_WAIT_SECONDS = 180


def shared_conf() -> dict[str, str]:
    """Confs of every module's session."""
    return cluster_conf(str(plugin_jar()))


def launch_driver_jvm() -> None:
    """Start the driver JVM, once per pytest process, with the shared confs only.

    PySpark launches it with the first session's confs, which become JVM system
    properties that every later SparkConf loads: one module's SPARK_CONF would
    leak into the sessions of all the modules after it.
    """
    from pyspark import SparkConf, SparkContext

    launch_conf = SparkConf(loadDefaults=False)
    for key, value in shared_conf().items():
        launch_conf.set(key, value)
    SparkContext._ensure_initialized(conf=launch_conf)


@pytest.fixture(scope="module")
def spark(request):
    """The module's session; a module may add confs in a ``SPARK_CONF`` dict."""
    from pyspark.sql import SparkSession

    os.environ.update(spark_test_environment())
    launch_driver_jvm()
    builder = SparkSession.builder.appName(f"flightpickle-{request.module.__name__}")
    for key, value in {**shared_conf(), **getattr(request.module, "SPARK_CONF", {})}.items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    try:
        wait_for_executors(session, EXECUTORS)
        yield session
    finally:
        session.stop()


def wait_for_executors(session, count: int) -> None:
    """Block until ``count`` executors have registered, so work spreads over all of them."""
    tracker = session.sparkContext._jsc.sc().statusTracker()
    deadline = time.monotonic() + EXECUTOR_WAIT_SECONDS
    while True:
        registered = len(tracker.getExecutorInfos()) - 1  # the driver is listed too
        if registered >= count:
            return
        if time.monotonic() > deadline:
            pytest.fail(f"only {registered} of {count} executors registered in {EXECUTOR_WAIT_SECONDS}s")
        time.sleep(0.5)
