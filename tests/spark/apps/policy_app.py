"""Command policy through the whole stack: requireSigned and allowedModules=math.

Run by tests/spark/test_plugin_submit.py through spark-submit with
spark.authenticate.secret set. It prints ``RESULT key=value`` lines.
"""

import math
import os
import sys
import tempfile

from pyspark.errors import AnalysisException
from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

MARKERS = tempfile.mkdtemp(prefix="flightpickle-policy-")


def leave_marker(n):
    """Run by a UDF: a file per call shows whether any task ran it."""
    with open(os.path.join(MARKERS, f"ran-{n}-{os.getpid()}"), "w"):
        pass
    return n


def attempt(spark, udf):
    """Build and run a query; the refusal must come when the plan is analysed."""
    tracker = spark.sparkContext.statusTracker()
    jobs_before = len(tracker.getJobIdsForGroup())
    try:
        spark.range(0, 4, numPartitions=2).select(udf("id").alias("v")).collect()
        return "ran", ""
    except AnalysisException as error:
        jobs_after = len(tracker.getJobIdsForGroup())
        return ("refused" if jobs_after == jobs_before else "refused-after-a-job"), str(error).splitlines()[0]


def main():
    spark = SparkSession.builder.getOrCreate()
    import flightpickle.spark  # instrumentation: to switch flightpickle off for one UDF

    print(f"RESULT enabled={flightpickle.spark.is_enabled()}")

    # 1. PySpark's own (unsigned) pickle.
    flightpickle.spark.disable()
    outcome, message = attempt(spark, F.udf(leave_marker, T.LongType()))
    print(f"RESULT unsigned={outcome}")
    print(f"RESULT unsigned_message={message}")
    print(f"RESULT markers_after_refusal={len(os.listdir(MARKERS))}")
    flightpickle.spark.enable(spark)

    # 2. Signed, and importing only math: runs.
    hypot = F.udf(lambda n: math.hypot(n, 0.0), T.DoubleType())
    rows = spark.range(0, 50, numPartitions=4).select("id", hypot("id").alias("h")).collect()
    print(f"RESULT signed_correct={all(r.h == float(r.id) for r in rows) and len(rows) == 50}")

    # 3. Signed but importing os, outside allowedModules.
    pid = F.udf(lambda n: os.getpid() + n, T.LongType())
    outcome, message = attempt(spark, pid)
    print(f"RESULT os={outcome}")
    print(f"RESULT os_message={message}")

    # The key derived from the secret is nowhere in the conf that the UI shows.
    conf_values = " ".join(value for _, value in spark.sparkContext.getConf().getAll())
    key = spark._jvm.io.flightpickle.spark.FlightPicklePlugin.commandSigningKey()
    print(f"RESULT key_in_conf={key is not None and key[1] in conf_values}")
    spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
