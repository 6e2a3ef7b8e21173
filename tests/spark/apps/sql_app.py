"""An application with no flightpickle code, run with ``spark.flightpickle.transport=local``:
its Python UDFs go through flightpickle's SQL operators and the executor service.

Run by tests/spark/test_plugin_submit.py through spark-submit. It prints one
``RESULT key=value`` line per fact the test checks.
"""

import sys

import pandas as pd
from pyspark.sql import SparkSession
from pyspark.sql import functions as F


def plan_of(frame) -> str:
    return frame._jdf.queryExecution().executedPlan().toString()


def report(name: str, frame, expected: list, operator: str) -> bool:
    """Run ``frame``; print whether its rows are ``expected`` and ``operator`` planned it."""
    rows = sorted(tuple(row) for row in frame.collect())
    correct = rows == expected
    print(f"RESULT {name}_correct={correct}")
    print(f"RESULT {name}_operator={operator in plan_of(frame)}")
    return correct


def main():
    spark = SparkSession.builder.getOrCreate()
    numbers = spark.range(0, 1_000, numPartitions=4)
    plus_one = F.udf(lambda n: n + 1, "long")
    doubled = F.pandas_udf(lambda s: s * 2, "long")

    def identity(batches):
        yield from batches

    def group_sizes(frame: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame({"key": [frame["key"].iloc[0]], "size": [len(frame)]})

    results = [
        report("udf", numbers.select("id", plus_one("id")), [(n, n + 1) for n in range(1_000)],
               "FlightPickleArrowEvalPython"),
        report("pandas_udf", numbers.select("id", doubled("id")), [(n, 2 * n) for n in range(1_000)],
               "FlightPickleArrowEvalPython"),
        report("map_in_arrow", numbers.mapInArrow(identity, "id long"), [(n,) for n in range(1_000)],
               "FlightPickleMapInArrow"),
        report("apply_in_pandas",
               numbers.withColumn("key", F.col("id") % 3).groupBy("key").applyInPandas(group_sizes, "key long, size long"),
               [(0, 334), (1, 333), (2, 333)], "FlightPickleFlatMapGroupsInPandas"),
    ]
    spark.stop()
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
