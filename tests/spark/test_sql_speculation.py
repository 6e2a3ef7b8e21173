"""Speculative execution through flightpickle's operators.

Spark never runs a speculative copy on a host where an attempt of the same task already runs, and
every executor of ``local-cluster`` reports the same host, so this module starts a small standalone
cluster of its own instead: a master on 127.0.0.1 and two one-core workers on 127.0.0.2 and
127.0.0.3 (all loopback addresses on Linux). One partition's first attempt waits in its Python
function; Spark launches a copy on the other worker, takes the copy's rows and kills the waiting
attempt, whose stream must end without its rows reaching the result.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from conftest import launch_driver_jvm, wait_for_executors
from spark_cluster import JVM_FAST_START, cluster_conf, spark_test_environment
from sql_operators import TRANSPORT, find_node, physical_plan
from support import plugin_jar

pytestmark = pytest.mark.spark

WORKER_HOSTS = ("127.0.0.2", "127.0.0.3")
START_SECONDS = 120
STOP_SECONDS = 30
# How long the first attempt of the slow partition waits before it answers anyway: long enough
# that only a speculative copy can finish the job first, short enough to bound the test.
SLOW_ATTEMPT_SECONDS = 60
ROWS = 2_000


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def spark_class() -> Path:
    from pyspark.find_spark_home import _find_spark_home

    return Path(_find_spark_home()) / "bin" / "spark-class"


def start_daemon(arguments: list[str], host: str, log: Path) -> subprocess.Popen:
    """A master or worker JVM in a process group of its own, so that stopping it stops its children."""
    environment = {**os.environ, **spark_test_environment(), "SPARK_LOCAL_IP": host, "SPARK_LOCAL_HOSTNAME": host,
                   "SPARK_DAEMON_JAVA_OPTS": JVM_FAST_START}
    with log.open("wb") as output:
        return subprocess.Popen([str(spark_class()), *arguments], env=environment, stdout=output,
                                stderr=subprocess.STDOUT, start_new_session=True)


def stop_daemon(process: subprocess.Popen) -> None:
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=STOP_SECONDS)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=STOP_SECONDS)


def wait_for_log(log: Path, text: str, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + START_SECONDS
    while text not in log.read_text(errors="replace"):
        if process.poll() is not None:
            pytest.fail(f"{log.name} ended before '{text}':\n{log.read_text(errors='replace')[-3000:]}")
        if time.monotonic() > deadline:
            pytest.fail(f"no '{text}' in {log.name} after {START_SECONDS}s")
        time.sleep(0.2)


@pytest.fixture(scope="module")
def standalone_master(tmp_path_factory):
    """``spark://127.0.0.1:port`` with two registered one-core workers on two loopback hosts."""
    logs = tmp_path_factory.mktemp("standalone")
    port = free_port()
    daemons = []
    try:
        master_log = logs / "master.log"
        master = start_daemon(["org.apache.spark.deploy.master.Master", "--host", "127.0.0.1", "--port", str(port),
                               "--webui-port", str(free_port())], "127.0.0.1", master_log)
        daemons.append(master)
        wait_for_log(master_log, "I have been elected leader", master)
        url = f"spark://127.0.0.1:{port}"
        for index, host in enumerate(WORKER_HOSTS):
            work = logs / f"work-{index}"
            work.mkdir()
            worker_log = logs / f"worker-{index}.log"
            daemons.append(start_daemon(["org.apache.spark.deploy.worker.Worker", "--host", host, "--cores", "1",
                                         "--memory", "1g", "--webui-port", str(free_port()), "--work-dir", str(work),
                                         url], host, worker_log))
            wait_for_log(worker_log, "Successfully registered with master", daemons[-1])
        yield url
    finally:
        for daemon in reversed(daemons):
            stop_daemon(daemon)


@pytest.fixture(scope="module")
def spark(standalone_master):
    from pyspark.sql import SparkSession

    os.environ.update(spark_test_environment())
    launch_driver_jvm()
    conf = {
        **cluster_conf(str(plugin_jar())),
        "spark.master": standalone_master,
        "spark.executor.cores": "1",
        "spark.driver.host": "127.0.0.1",
        TRANSPORT: "local",
        "spark.speculation": "true",
        "spark.speculation.interval": "100ms",
        "spark.speculation.quantile": "0.5",
        "spark.speculation.multiplier": "1.5",
        "spark.speculation.minTaskRuntime": "1s",
        # The classic rule: speculate a task that runs long against the finished ones. The efficiency
        # rule compares input rates, and a range has no input metrics to compare.
        "spark.speculation.efficiency.enabled": "false",
    }
    builder = SparkSession.builder.appName("flightpickle-speculation")
    for key, value in conf.items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    try:
        wait_for_executors(session, len(WORKER_HOSTS))
        yield session
    finally:
        session.stop()


def slow_first_attempt(marks: str, seconds: float):
    """mapInArrow function: the partition holding row 0 waits ``seconds`` on its first attempt only.

    Attempts tell each other apart by a file: the first to see row 0 creates it; any later attempt
    of that partition finds it and answers at once."""

    def run(batches):
        import os
        import time

        for batch in batches:
            if batch.num_rows and batch.column(0)[0].as_py() == 0:
                try:
                    open(os.path.join(marks, "slow-attempt"), "x").close()
                except FileExistsError:
                    open(os.path.join(marks, f"copy-{os.getpid()}"), "w").close()
                else:
                    time.sleep(seconds)
                    open(os.path.join(marks, "slow-attempt-answered"), "w").close()
            yield batch

    return run


def test_executors_are_on_two_hosts(spark):
    tracker = spark.sparkContext._jsc.sc().statusTracker()
    hosts = {info.host() for info in tracker.getExecutorInfos()} - {"127.0.0.1"}
    assert hosts == set(WORKER_HOSTS)


def test_a_speculative_copy_finishes_the_task_and_the_slow_attempt_is_killed(spark, tmp_path):
    query = spark.range(0, ROWS, numPartitions=2).mapInArrow(slow_first_attempt(str(tmp_path), SLOW_ATTEMPT_SECONDS),
                                                             "id long")
    assert find_node(query._jdf.queryExecution().executedPlan(), "FlightPickleMapInArrow"), physical_plan(query)

    ids = sorted(row.id for row in query.collect())

    assert ids == list(range(ROWS)), "each row once, from the copy, none from the killed attempt"
    assert (tmp_path / "slow-attempt").exists(), "the slow attempt ran"
    assert list(tmp_path.glob("copy-*")), "a speculative copy ran the slow partition"
    assert not (tmp_path / "slow-attempt-answered").exists(), "the job waited for the slow attempt"


def test_the_session_runs_the_next_query_after_a_speculated_one(spark):
    assert spark.range(0, 10, numPartitions=2).selectExpr("sum(id) as s").collect()[0].s == 45
