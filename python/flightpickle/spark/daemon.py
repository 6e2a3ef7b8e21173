"""The Python daemon of Spark executors, with flightpickle loaded before workers fork.

Set ``spark.python.daemon.module=flightpickle.spark.daemon``: Spark starts it
with ``python -m`` once per executor, and it forks a worker per task slot.
Importing flightpickle here, before the fork, means no worker pays for the
import, and every worker starts with the reconstructors and the cache of
opened commands ready. The workers also leave their cache counts where the
executor's plugin reads them (``worker_reports``). Then PySpark's own daemon
takes over unchanged.
"""

import sys

import flightpickle  # noqa: F401  (preloaded for the forked workers)
import flightpickle.sealing  # noqa: F401
from flightpickle.spark import worker_reports
from pyspark import daemon

if __name__ == "__main__":
    try:
        worker_reports.report_from_workers()
    except OSError as error:  # an unwritable directory costs the metric, not the executor
        # stderr: PySpark's daemon tells the JVM its port on stdout.
        print(f"flightpickle: workers' cache counts will not be reported: {error}", file=sys.stderr, flush=True)
    daemon.manager()
