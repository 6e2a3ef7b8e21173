"""A real Spark Connect server on loopback, in a process of its own.

It runs Spark's own ``SparkConnectServer`` class through the venv's
``spark-submit`` on ``local-cluster[2,1,1024]`` with the plugin jar, the way a
user would start one, so the test process is a pure Connect client: no
SparkContext, only gRPC. The port is a free loopback port, the client
authenticates with a token made per run, and start-up is bounded in time.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from spark_cluster import cluster_conf, spark_test_environment
from support import plugin_jar

SERVER_CLASS = "org.apache.spark.sql.connect.service.SparkConnectServer"
START_SECONDS = 240
STOP_SECONDS = 60
# Environment that would make this process, or the server, think it is a Connect client already.
# What a remote session sets in this process.
CLIENT_ENV = ("SPARK_CONNECT_MODE_ENABLED", "SPARK_REMOTE", "SPARK_LOCAL_REMOTE")
_CONNECT_ENV = ("SPARK_REMOTE", "SPARK_LOCAL_REMOTE", "SPARK_CONNECT_MODE_ENABLED", "SPARK_CONNECT_AUTHENTICATE_TOKEN")


@contextlib.contextmanager
def connect_session(log_path: Path, conf: dict[str, str]):
    """A client session on a server of its own; this process leaves Connect mode afterwards.

    Creating a remote session sets environment variables that make later code
    in the process think it is a Connect client; they are put back on exit.
    """
    from pyspark.sql import SparkSession

    saved_env = {name: os.environ.get(name) for name in CLIENT_ENV}
    with connect_server(log_path, conf) as url:
        session = SparkSession.builder.remote(url).getOrCreate()
        try:
            yield session
        finally:
            session.stop()
            for name, value in saved_env.items():
                os.environ.pop(name, None)
                if value is not None:
                    os.environ[name] = value


class ServerFailed(RuntimeError):
    """The server exited or did not listen in time; the message holds its log's tail."""


@contextlib.contextmanager
def connect_server(log_path: Path, conf: dict[str, str]) -> Iterator[str]:
    """Run a Connect server for the block; yields the ``sc://`` URL a client uses."""
    port = _free_loopback_port()
    token = secrets.token_hex(16)
    command = _submit_command(port, conf)
    env = {k: v for k, v in os.environ.items() if k not in _CONNECT_ENV}
    env.update(spark_test_environment(), SPARK_CONNECT_AUTHENTICATE_TOKEN=token)
    with open(log_path, "wb") as log:
        server = subprocess.Popen(
            command, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        _wait_until_listening(server, port, log_path)
        yield f"sc://localhost:{port}/;token={token}"
    finally:
        _stop(server)


def _submit_command(port: int, conf: dict[str, str]) -> list[str]:
    settings = {
        "spark.connect.grpc.binding.address": "127.0.0.1",
        "spark.connect.grpc.binding.port": str(port),
        **cluster_conf(str(plugin_jar())),
        # The first job waits for both executors, so work spreads over them.
        "spark.scheduler.minRegisteredResourcesRatio": "1.0",
        "spark.scheduler.maxRegisteredResourcesWaitingTime": "180s",
        **conf,
    }
    command = [str(Path(sys.executable).parent / "spark-submit"), "--class", SERVER_CLASS]
    command += ["--name", "flightpickle-connect-tests"]
    for key, value in settings.items():
        command += ["--conf", f"{key}={value}"]
    return command


def _free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_until_listening(server: subprocess.Popen, port: int, log_path: Path) -> None:
    """The server opens its port once its SparkContext is up; executors may still be coming."""
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise ServerFailed(f"Connect server exited with {server.returncode}:\n{_tail(log_path)}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            return
        time.sleep(1)
    raise ServerFailed(f"Connect server did not listen on {port} in {START_SECONDS}s:\n{_tail(log_path)}")


def _stop(server: subprocess.Popen) -> None:
    """SIGTERM lets Spark's shutdown hooks stop the executors; SIGKILL if that hangs."""
    if server.poll() is None:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(STOP_SECONDS)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(STOP_SECONDS)


def _tail(log_path: Path, lines: int = 40) -> str:
    return "\n".join(log_path.read_text(errors="replace").splitlines()[-lines:])

