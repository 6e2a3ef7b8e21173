"""With flightpickle's operators, the driver plugin bounds the executors' malloc arenas by default:
the cluster's confs set no ``MALLOC_ARENA_MAX``, and the executor JVMs local-cluster starts have
``MALLOC_ARENA_MAX=2`` in their environment. The conf that turns it off is in
``test_executor_arenas_off.py`` (a session of its own)."""

from __future__ import annotations

import os

import pytest

from executor_environment import executor_environments
from spark_cluster import EXECUTORS, cluster_conf
from sql_operators import TRANSPORT

pytestmark = pytest.mark.spark

SPARK_CONF = {TRANSPORT: "local"}
ARENA_MAX = "MALLOC_ARENA_MAX"


def test_the_cluster_confs_leave_the_bound_to_the_plugin():
    assert not any(ARENA_MAX in key for key in cluster_conf("plugin.jar"))
    assert ARENA_MAX not in os.environ, "this test needs a driver environment without MALLOC_ARENA_MAX"


def test_executor_jvms_start_with_two_arenas(spark):
    environments = executor_environments(spark)
    assert len(environments) == EXECUTORS, environments.keys()
    for pid, environment in environments.items():
        assert environment.get(ARENA_MAX) == "2", (pid, environment.get(ARENA_MAX))


def test_the_conf_shows_what_the_plugin_set(spark):
    assert spark.sparkContext.getConf().get(f"spark.executorEnv.{ARENA_MAX}") == "2"
