"""A driver program whose UDFs, helpers, class and enum all live in ``__main__``.

Run as ``python udfs_in_main.py RESULTS.json CONF.json`` (the test in
``tests/spark/test_main_program.py`` does): one Spark session with the confs in
CONF.json, every UDF kind run in four passes, the rows of each written to
RESULTS.json for the test to compare:

- ``stock``: PySpark's own pickling, the project module shipped by PySpark's
  cloudpickle;
- ``unshipped``: flightpickle with the project module not shipped, which must
  fail on the executors (proof that they cannot import it);
- ``registered``: flightpickle with ``pickle_by_value(project_scaling)``;
- ``policy``: flightpickle finding the module by ``pickle_local_modules=True``.

Every UDF reaches a global (``OFFSET``), a class and an enum defined here and
``project_scaling``, a file next to this one that executors cannot import.
Two kinds capture a 10 MB numpy array, which sends them down the broadcast path.
"""

import enum
import json
import sys
from collections.abc import Iterator

import numpy as np
import pandas as pd  # at module level: PySpark resolves pandas_udf type hints through it

import flightpickle.spark
import project_scaling

OFFSET = 7
WEIGHTS = np.arange(10 * 1024 * 1024 // 8, dtype=np.int64) * 2  # 10 MB


class Size(enum.Enum):
    SMALL = "s"
    LARGE = "l"

    @classmethod
    def of(cls, n):
        return cls.LARGE if n >= 10 else cls.SMALL


class Tagger:
    def __init__(self, prefix):
        self.prefix = prefix

    def tag(self, n):
        return f"{self.prefix}{Size.of(n).value}{project_scaling.scale(n) + OFFSET}"


def tag(n):
    return Tagger("t:").tag(n)


def weight(n):
    return int(WEIGHTS[n]) + OFFSET


def scalar_udf(spark):
    from pyspark.sql import functions as F

    return spark.range(20).select(F.udf(lambda n: tag(n), "string")("id"))


def scalar_udf_without_arrow(spark):
    from pyspark.sql import functions as F

    return spark.range(20).select(F.udf(lambda n: Tagger("p:").tag(n), "string", useArrow=False)("id"))


def pandas_scalar_udf(spark):
    from pyspark.sql.functions import pandas_udf

    @pandas_udf("string")
    def tags(s: pd.Series) -> pd.Series:
        return s.map(tag)

    return spark.range(20).select(tags("id"))


def pandas_iterator_udf(spark):
    from pyspark.sql.functions import pandas_udf

    @pandas_udf("long")
    def scaled(batches: Iterator[pd.Series]) -> Iterator[pd.Series]:
        for s in batches:
            yield project_scaling.scale(s) + OFFSET

    return spark.range(20).select(scaled("id"))


def pandas_grouped_agg_udf(spark):
    from pyspark.sql import functions as F
    from pyspark.sql.functions import pandas_udf

    @pandas_udf("double")
    def scaled_mean(s: pd.Series) -> float:
        return float(project_scaling.scale(s).mean()) + OFFSET

    return spark.range(20).groupBy((F.col("id") % 3).alias("k")).agg(scaled_mean("id"))


def map_in_arrow(spark):
    import pyarrow as pa

    def tagged(batches):
        for batch in batches:
            yield pa.RecordBatch.from_pydict({"t": [tag(n) for n in batch.column(0).to_pylist()]})

    return spark.range(20).mapInArrow(tagged, "t string")


def map_in_pandas(spark):
    return spark.range(20).mapInPandas(lambda frames: (f.assign(t=f.id.map(tag)) for f in frames), "id long, t string")


def apply_in_pandas(spark):
    from pyspark.sql import functions as F

    by_size = spark.range(20).withColumn("k", F.when(F.col("id") >= 10, Size.LARGE.value).otherwise(Size.SMALL.value))
    return by_size.groupBy("k").applyInPandas(
        lambda f: f.assign(id=project_scaling.scale(f.id) + OFFSET), "id long, k string"
    )


def cogroup_apply_in_pandas(spark):
    from pyspark.sql import functions as F

    left = spark.range(10).withColumn("k", F.col("id") % 2)
    right = spark.range(6).withColumn("k", F.col("id") % 2)
    return (
        left.groupBy("k")
        .cogroup(right.groupBy("k"))
        .applyInPandas(
            lambda a, b: pd.DataFrame({"k": [int(a.k.iloc[0])], "t": [tag(len(a) + len(b))]}), "k long, t string"
        )
    )


def registered_sql_udf(spark):
    spark.udf.register("tag_in_main", lambda n: tag(int(n)), "string")
    return spark.sql("SELECT tag_in_main(id) FROM range(15)")


def python_udtf(spark):
    from pyspark.sql.functions import lit, udtf

    @udtf(returnType="n: int, t: string")
    class Tags:
        def eval(self, upto: int):
            for n in range(upto):
                yield n, tag(n)

    return Tags(lit(12))


def rdd_functions(spark):
    counter = spark.sparkContext.accumulator(0)
    rdd = spark.sparkContext.parallelize(range(30), 3)
    rdd.foreach(lambda n: counter.add(project_scaling.scale(n)))
    total = rdd.map(lambda n: project_scaling.scale(n) + OFFSET).sum()
    return spark.createDataFrame([(counter.value,), (total,)], "v long")


def scalar_udf_capturing_array(spark):
    from pyspark.sql import functions as F

    return spark.range(0, 20, numPartitions=2).select(F.udf(lambda n: weight(n), "long")("id"))


def pandas_udf_capturing_array(spark):
    from pyspark.sql.functions import pandas_udf

    @pandas_udf("long")
    def weights(s: pd.Series) -> pd.Series:
        return pd.Series(WEIGHTS[s.to_numpy()] + OFFSET)

    return spark.range(0, 20, numPartitions=2).select(weights("id"))


KINDS = [
    scalar_udf,
    scalar_udf_without_arrow,
    pandas_scalar_udf,
    pandas_iterator_udf,
    pandas_grouped_agg_udf,
    map_in_arrow,
    map_in_pandas,
    apply_in_pandas,
    cogroup_apply_in_pandas,
    registered_sql_udf,
    python_udtf,
    rdd_functions,
    scalar_udf_capturing_array,
    pandas_udf_capturing_array,
]


def rows(df):
    return sorted([list(row) for row in df.collect()])


def stock_pass(spark):
    from pyspark import cloudpickle

    cloudpickle.register_pickle_by_value(project_scaling)
    try:
        return {kind.__name__: {"rows": rows(kind(spark))} for kind in KINDS}
    finally:
        cloudpickle.unregister_pickle_by_value(project_scaling)


def flightpickle_pass(spark, **settings):
    """Every kind with flightpickle's hook, with how many commands (and broadcasts) it pickled."""
    flightpickle.spark.enable(spark, **settings)
    try:
        results = {}
        for kind in KINDS:
            before = flightpickle.spark.stats()
            found = rows(kind(spark))
            after = flightpickle.spark.stats()
            results[kind.__name__] = {
                "rows": found,
                "commands": after.commands - before.commands,
                "broadcasts": after.broadcast_commands - before.broadcast_commands,
            }
        return results
    finally:
        flightpickle.spark.disable()


def unshipped_error(spark) -> str:
    """The executors' error for a UDF whose project module was not shipped."""
    flightpickle.spark.enable(spark)
    try:
        rows(scalar_udf(spark))
    except Exception as error:  # the job must fail; its message is the result
        return str(error)
    finally:
        flightpickle.spark.disable()
    return ""


def registered_pass(spark):
    flightpickle.spark.pickle_by_value(project_scaling)
    try:
        return flightpickle_pass(spark)
    finally:
        flightpickle.unregister_pickle_by_value(project_scaling)


def main(results_path, conf_path):
    from pyspark.sql import SparkSession

    with open(conf_path) as f:
        conf = json.load(f)
    builder = SparkSession.builder.appName("flightpickle-udfs-in-main")
    for key, value in conf.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    try:
        results = {
            "stock": stock_pass(spark),
            "unshipped_error": unshipped_error(spark),
            "registered": registered_pass(spark),
            "policy": flightpickle_pass(spark, pickle_local_modules=True),
        }
    finally:
        spark.stop()
    with open(results_path, "w") as f:
        json.dump(results, f)


if __name__ == "__main__":
    main(*sys.argv[1:])
