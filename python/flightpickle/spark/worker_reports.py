"""Python workers' cache counts, left where their executor's plugin reads them.

A forked Python worker has no channel to its executor JVM's metric registry,
but both know one directory: Spark starts the Python daemon in SparkFiles' root
directory, which the executor plugin asks for too. Each worker keeps one small
file in ``REPORTS_DIR`` there, named by its pid and the time it first wrote
(pids are reused), holding its cumulative cache hits and misses as two
integers; the plugin sums the files when its gauges are read. Counts only
grow, so the file of a worker that has exited still counts what it did.
"""

from __future__ import annotations

import os
import time

from flightpickle import sealing

REPORTS_DIR = "flightpickle-worker-reports"


class WorkerReport:
    """Writes this process's counts into ``directory`` (``sealing.observe_cache``'s observer)."""

    def __init__(self, directory: str):
        self.directory = directory
        self._owner_pid: int | None = None
        self._path = ""

    def __call__(self, hits: int, misses: int) -> None:
        if self._owner_pid != os.getpid():  # first write since this worker was forked
            self._owner_pid = os.getpid()
            self._path = os.path.join(self.directory, f"{self._owner_pid}-{time.time_ns()}.counts")
        partial = f"{self._path}.partial"
        try:
            with open(partial, "w") as file:
                file.write(f"{hits} {misses}\n")
            os.replace(partial, self._path)  # readers see the old counts or the new, never half
        except OSError:
            pass  # a metric must never fail the task that opened the command


def report_from_workers(working_dir: str | None = None) -> WorkerReport:
    """Make the workers forked from this process report their cache counts."""
    directory = os.path.join(os.path.abspath(working_dir or os.getcwd()), REPORTS_DIR)
    os.makedirs(directory, exist_ok=True)
    report = WorkerReport(directory)
    sealing.observe_cache(report)
    return report
