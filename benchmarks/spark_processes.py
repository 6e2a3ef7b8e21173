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
EXECUTOR_ID = re.compile(r"--executor-id (\S+)")


@dataclass(frozen=True)
class ClusterProcess:
    pid: int
    role: str  # "executor JVM", "service supervisor" or "service worker"
    executor: str  # the Spark executor id it belongs to

    @property
    def label(self) -> str:
        if self.role == "service worker":
            return f"executor {self.executor} service worker {self.pid}"
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
    """The executor JVMs, service supervisors and service workers started under ``root``
    (this process by default), each tied to its executor's id."""
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
    supervisors = {}
    for pid in sorted(ours):
        parent, command = table[pid]
        if SERVICE_COMMAND in command and parent in executor_of:
            supervisors[pid] = executor_of[parent]
            found.append(ClusterProcess(pid, "service supervisor", supervisors[pid]))
    for pid in sorted(ours):
        parent = table[pid][0]
        if parent in supervisors:
            found.append(ClusterProcess(pid, "service worker", supervisors[parent]))
    return found


def resident_bytes(pid: int) -> int | None:
    """``VmRSS`` of ``pid``; None once it has ended."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        return None
    return None
