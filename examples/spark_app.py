"""A PySpark job whose UDFs are written the way notebooks write them.

Everything below lives in ``__main__``: a lambda, a closure over a global, and
a class. Executors cannot import ``__main__``, so these travel by value, pickled
by flightpickle on the driver and loaded by plain ``pickle.loads`` in the
executors' Python workers.

Run it with the plugin jar on a local two-executor cluster (``make demo`` does
exactly this):

    spark-submit --master 'local-cluster[2,1,1024]' \\
        --jars jvm/target/flightpickle-spark-<version>.jar \\
        --conf spark.plugins=io.flightpickle.spark.FlightPicklePlugin \\
        examples/spark_app.py

It prints each result beside the value computed locally, which executor JVMs
did the work, and exits non-zero if anything disagrees.
"""

from __future__ import annotations

import os
import sys
import time

from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

import flightpickle
import flightpickle.spark

ROWS = 1_000
PARTITIONS = 8
EXECUTORS = 2

# A global that the closure below reads: it must travel with the function.
SHIPPING_FEE = 4.5


def make_pricer(tax_rate):
    """A closure over ``tax_rate`` that also reads the global ``SHIPPING_FEE``."""

    def price(amount):
        return round(amount * (1 + tax_rate) + SHIPPING_FEE, 2)

    return price


class Temperature:
    """A helper class defined in ``__main__``, used inside a UDF."""

    def __init__(self, celsius):
        self.celsius = celsius

    @property
    def fahrenheit(self):
        return self.celsius * 9 / 5 + 32

    def describe(self):
        return "hot" if self.fahrenheit > 86 else "mild" if self.fahrenheit > 50 else "cold"


def executor_id():
    """The id of the executor JVM that runs this Python worker (found via /proc)."""
    pid = os.getpid()
    while pid > 1:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            args = f.read().split(b"\0")
        if b"org.apache.spark.executor.CoarseGrainedExecutorBackend" in args:
            return args[args.index(b"--executor-id") + 1].decode()
        with open(f"/proc/{pid}/stat") as f:
            pid = int(f.read().rsplit(")", 1)[1].split()[1])
    return "driver"


square = F.udf(lambda n: n * n, T.LongType())
price = F.udf(make_pricer(0.2), T.DoubleType())
weather = F.udf(lambda c: Temperature(c).describe(), T.StringType())
where = F.udf(lambda _: executor_id(), T.StringType())


def expected_row(n):
    return (n, n * n, make_pricer(0.2)(n), Temperature(n % 40).describe())


def wait_for_executors(spark, count, timeout=180):
    tracker = spark.sparkContext._jsc.sc().statusTracker()
    deadline = time.monotonic() + timeout
    while len(tracker.getExecutorInfos()) - 1 < count:  # the driver is listed too
        if time.monotonic() > deadline:
            sys.exit(f"only {len(tracker.getExecutorInfos()) - 1} of {count} executors started")
        time.sleep(0.5)


def main():
    # No flightpickle.spark.enable(spark) here: the plugin turns flightpickle on in this
    # driver's Python when the SparkContext starts.
    spark = SparkSession.builder.appName("flightpickle-demo").getOrCreate()
    wait_for_executors(spark, EXECUTORS)

    df = spark.range(0, ROWS, numPartitions=PARTITIONS).select(
        F.col("id").alias("n"),
        square("id").alias("square"),
        price("id").alias("price"),
        weather(F.col("id") % 40).alias("weather"),
        where("id").alias("executor"),
    )
    rows = df.orderBy("n").collect()

    results = [(r.n, r.square, r.price, r.weather) for r in rows]
    expected = [expected_row(n) for n in range(ROWS)]
    executors = sorted({r.executor for r in rows})
    stats = flightpickle.spark.stats()
    reports = spark._jvm.io.flightpickle.spark.FlightPicklePlugin.nativeCoreReports()

    print("\n   n  square     price  weather")
    for n, sq, pr, we in results[:3] + results[-3:]:
        print(f"{n:4d}  {sq:6d}  {pr:8.2f}  {we}")
    print(f"rows checked against local results: {len(results)}, "
          f"{'all match' if results == expected else 'MISMATCH'}")
    print(f"computed by executor JVMs: {', '.join(executors)}")
    print(f"flightpickle enabled by the plugin: {flightpickle.spark.is_enabled()}")
    print(f"UDF commands pickled by flightpickle {flightpickle.__version__}: "
          f"{stats.commands} ({stats.payload_bytes} bytes)")
    print("native core loaded by the plugin in: "
          + ", ".join(f"executor {k} ({v})" for k, v in sorted(dict(reports).items())))
    spark.stop()

    ok = (
        flightpickle.spark.is_enabled()
        and results == expected
        and len(executors) == EXECUTORS
        and "driver" not in executors
        and stats.commands >= 4
        and len(reports) == EXECUTORS
    )
    print("demo OK" if ok else "demo FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
