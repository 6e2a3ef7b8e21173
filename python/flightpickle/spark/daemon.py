"""The Python daemon of Spark executors, with flightpickle loaded before workers fork.

Set ``spark.python.daemon.module=flightpickle.spark.daemon``: Spark starts it
with ``python -m`` once per executor, and it forks a worker per task slot.
Importing flightpickle here, before the fork, means no worker pays for the
import, and every worker starts with the reconstructors and the cache of
opened commands ready. Then PySpark's own daemon takes over unchanged.
"""

import flightpickle  # noqa: F401  (preloaded for the forked workers)
import flightpickle.sealing  # noqa: F401
from pyspark import daemon

if __name__ == "__main__":
    daemon.manager()
