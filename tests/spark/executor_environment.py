"""The environment the cluster manager gave the executor JVMs of a running session, read from /proc."""

from __future__ import annotations

from pathlib import Path

from benchmarks.spark_processes import cluster_processes, process_table


def executor_environments(spark) -> dict[int, dict[str, str]]:
    """Each executor JVM of ``spark``'s application (pid -> its environment at start).

    Only this process's descendants count (other engineers' clusters share the machine), and
    only executors of this application: one of an earlier module's may still be ending."""
    app_id = spark.sparkContext.applicationId
    commands = {pid: command for pid, (_, command) in process_table().items()}
    environments = {}
    for process in cluster_processes():
        if process.role == "executor JVM" and f"--app-id {app_id}" in commands.get(process.pid, ""):
            environments[process.pid] = read_environment(process.pid)
    return environments


def read_environment(pid: int) -> dict[str, str]:
    entries = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    pairs = (entry.decode(errors="replace").partition("=") for entry in entries if entry)
    return {name: value for name, _, value in pairs}
