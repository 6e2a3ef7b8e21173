"""``spark.flightpickle.executor.mallocArenaMax=0`` leaves the executors' malloc arenas to glibc:
with flightpickle's operators on, the executor JVMs local-cluster starts have no
``MALLOC_ARENA_MAX`` in their environment (``test_executor_arenas.py`` shows the default)."""

from __future__ import annotations

import os

import pytest

from executor_environment import executor_environments
from spark_cluster import EXECUTORS
from sql_operators import TRANSPORT

pytestmark = pytest.mark.spark

SPARK_CONF = {TRANSPORT: "local", "spark.flightpickle.executor.mallocArenaMax": "0"}
ARENA_MAX = "MALLOC_ARENA_MAX"


def test_executor_jvms_keep_glibcs_arenas(spark):
    assert ARENA_MAX not in os.environ, "this test needs a driver environment without MALLOC_ARENA_MAX"
    environments = executor_environments(spark)
    assert len(environments) == EXECUTORS, environments.keys()
    for pid, environment in environments.items():
        assert ARENA_MAX not in environment, (pid, environment[ARENA_MAX])
    assert spark.sparkContext.getConf().get(f"spark.executorEnv.{ARENA_MAX}") is None
