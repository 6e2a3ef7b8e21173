"""The plugin's command check on a shared Spark Connect server.

A Connect server runs every client's pickles on its executors; with
``spark.flightpickle.allowedModules`` the plugin refuses, at analysis on the
server and before any task, a UDF whose command imports a module outside the
list, whether a flightpickle client sealed it or a stock PySpark client
pickled it with cloudpickle.
"""

from __future__ import annotations

import math
import os

import pytest

import flightpickle.spark
from connect_server import connect_session

pytestmark = pytest.mark.spark

SERVER_CONF = {
    "spark.python.daemon.module": "flightpickle.spark.daemon",
    "spark.flightpickle.allowedModules": "math",
    "spark.task.maxFailures": "1",
}


@pytest.fixture(scope="module")
def spark(tmp_path_factory):
    with connect_session(tmp_path_factory.mktemp("connect-policy") / "server.log", SERVER_CONF) as session:
        try:
            yield session
        finally:
            flightpickle.spark.disable()


def pid_query(spark):
    from pyspark.sql import functions as F

    return spark.range(3).select(F.udf(lambda n: os.getpid() + n, "long")("id"))


def sqrt_query(spark):
    from pyspark.sql import functions as F

    return spark.range(4).select(F.udf(lambda n: math.sqrt(n), "double")("id"))


@pytest.mark.parametrize("client", ["flightpickle", "stock pyspark"])
def test_a_udf_importing_a_module_outside_the_list_is_refused_on_the_server(spark, client):
    if client == "flightpickle":
        flightpickle.spark.enable(spark)
    else:
        flightpickle.spark.disable()
    with pytest.raises(Exception) as refused:
        pid_query(spark).collect()
    message = str(refused.value)
    assert "flightpickle refused the Python UDF '<lambda>': its command imports os," in message, message


def test_a_udf_within_the_list_runs(spark):
    flightpickle.spark.enable(spark)
    rows = sqrt_query(spark).collect()
    assert [r[0] for r in rows] == [math.sqrt(n) for n in range(4)]
    assert flightpickle.spark.stats().commands >= 1
