"""The processes of this benchmark's Spark cluster, found through /proc.

Other engineers run Spark clusters on the same machine, so executors are not
found by their command line alone: only descendants of this Python process count
(its gateway JVM hosts local-cluster's master and workers, and they fork the
executor JVMs; each executor's plugin starts a service supervisor, which starts
the service's workers).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

EXECUTOR_MAIN = "CoarseGrainedExecutorBackend"
SERVICE_COMMAND = "flightpickle.executor serve"
# The parent of Spark's own Python workers (transport=spark): pyspark.daemon, or the
# plugin's flightpickle.spark.daemon that stands in for it.
PYSPARK_DAEMON = "spark.daemon"
EXECUTOR_ID = re.compile(r"--executor-id (\S+)")


@dataclass(frozen=True)
class ClusterProcess:
    pid: int
    role: str  # "executor JVM", "service supervisor", "service worker", "pyspark daemon" or "pyspark worker"
    executor: str  # the Spark executor id it belongs to

    @property
    def label(self) -> str:
        if self.role.endswith("worker"):
            return f"executor {self.executor} {self.role} {self.pid}"
        return f"executor {self.executor} {self.role}"


def process_table() -> dict[int, tuple[int, str]]:
    """Every readable process: pid -> (parent pid, command line)."""
    table = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
            # The command name in stat may hold spaces and parentheses: split after the last ')'.
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue  # ended while being read
        table[int(entry.name)] = (parent, command)
    return table


def descendants(root: int, table: dict[int, tuple[int, str]]) -> set[int]:
    children: dict[int, list[int]] = {}
    for pid, (parent, _) in table.items():
        children.setdefault(parent, []).append(pid)
    found, pending = set(), [root]
    while pending:
        for child in children.get(pending.pop(), []):
            if child not in found:
                found.add(child)
                pending.append(child)
    return found


def cluster_processes(root: int | None = None) -> list[ClusterProcess]:
    """The executor JVMs, service supervisors and service workers (and Spark's own Python
    daemons and workers) started under ``root`` (this process by default), each tied to its
    executor's id."""
    table = process_table()
    ours = descendants(os.getpid() if root is None else root, table)
    executor_of: dict[int, str] = {}
    found = []
    for pid in sorted(ours):
        command = table[pid][1]
        if EXECUTOR_MAIN in command:
            match = EXECUTOR_ID.search(command)
            executor_of[pid] = match.group(1) if match else "?"
            found.append(ClusterProcess(pid, "executor JVM", executor_of[pid]))
    parents = {}  # a supervisor or daemon pid -> (the role of its children, its executor)
    for pid in sorted(ours):
        parent, command = table[pid]
        if parent not in executor_of:
            continue
        for marker, role, children in ((SERVICE_COMMAND, "service supervisor", "service worker"),
                                       (PYSPARK_DAEMON, "pyspark daemon", "pyspark worker")):
            if marker in command:
                parents[pid] = (children, executor_of[parent])
                found.append(ClusterProcess(pid, role, executor_of[parent]))
    for pid in sorted(ours):
        parent = table[pid][0]
        if parent in parents:
            found.append(ClusterProcess(pid, *parents[parent]))
    return found


def resident_parts(pid: int) -> dict[str, int] | None:
    """``VmRSS`` of ``pid`` and its anonymous and file-backed parts (``RssAnon``, ``RssFile``:
    memory a process allocated, against mapped files such as libraries, jars and shuffle
    files read through mmap), in bytes; None once it has ended."""
    wanted = {"VmRSS:": "rss", "RssAnon:": "rss_anon", "RssFile:": "rss_file"}
    parts = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key = line.split(maxsplit=1)[0] if line else ""
            if key in wanted:
                parts[wanted[key]] = int(line.split()[1]) * 1024
    except (OSError, ValueError):
        return None
    return parts if "rss" in parts else None


def resident_bytes(pid: int) -> int | None:
    """``VmRSS`` of ``pid``; None once it has ended."""
    parts = resident_parts(pid)
    return None if parts is None else parts["rss"]
