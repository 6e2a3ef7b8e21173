"""An application with no flightpickle code at all: the plugin alone turns it on.

Run by tests/spark/test_plugin_submit.py through spark-submit. It prints one
``RESULT key=value`` line per fact the test checks.
"""

import math
import sys

from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

OFFSET = 7


def shifted(n):
    return n * n + OFFSET


def main():
    spark = SparkSession.builder.getOrCreate()
    # The app never imports flightpickle: the plugin's switch and the start-up hook loaded
    # and enabled it when the SparkContext started. Only reading what happened follows.
    hooked = sys.modules.get("flightpickle.spark")
    print(f"RESULT loaded_by_hook={hooked is not None}")
    import flightpickle.spark

    square = F.udf(shifted, T.LongType())
    root = F.udf(lambda n: math.sqrt(n), T.DoubleType())
    rows = spark.range(0, 200, numPartitions=8).select("id", square("id").alias("sq"), root("id").alias("rt")).collect()
    correct = all(r.sq == shifted(r.id) and abs(r.rt - math.sqrt(r.id)) < 1e-9 for r in rows) and len(rows) == 200
    print(f"RESULT enabled={flightpickle.spark.is_enabled()}")
    print(f"RESULT commands={flightpickle.spark.stats().commands}")
    print(f"RESULT correct={correct}")
    print(f"RESULT daemon={spark.sparkContext.getConf().get('spark.python.daemon.module')}")
    # Executors write their metrics every second; give them one more period before stopping.
    spark.range(1).collect()
    import time

    time.sleep(2.5)
    spark.stop()
    return 0 if correct else 1


if __name__ == "__main__":
    sys.exit(main())
