"""Every kind of Python UDF, as a query to run on a session, classic or Connect.

Each query is built from a lambda, a closure, a local class and an enum: none
of them importable on executors once this module is shipped by value, which
the tests do with both flightpickle and PySpark's own cloudpickle.
"""

import enum
from collections.abc import Iterator

import pandas as pd  # at module level: PySpark resolves pandas_udf type hints through it

from sql_operators import with_transport


class Size(enum.Enum):
    SMALL = 1
    LARGE = 2


def scalar_udf(spark):
    from pyspark.sql import functions as F

    offset = 7
    return spark.range(20).select(F.udf(lambda n: n + offset, "long")("id"))


def scalar_udf_without_arrow(spark):
    from pyspark.sql import functions as F

    class Labeller:
        def label(self, n):
            return Size.LARGE.name if n > 10 else Size.SMALL.name

    return spark.range(20).select(F.udf(lambda n: Labeller().label(n), "string", useArrow=False)("id"))


def pandas_scalar_udf(spark):
    from pyspark.sql.functions import pandas_udf

    factor = 3

    @pandas_udf("long")
    def triple(s: pd.Series) -> pd.Series:
        return s * factor

    return spark.range(20).select(triple("id"))


def pandas_iterator_udf(spark):
    from pyspark.sql.functions import pandas_udf

    @pandas_udf("long")
    def plus_one(batches: Iterator[pd.Series]) -> Iterator[pd.Series]:
        for s in batches:
            yield s + 1

    return spark.range(20).select(plus_one("id"))


def pandas_grouped_agg_udf(spark):
    from pyspark.sql import functions as F
    from pyspark.sql.functions import pandas_udf

    @pandas_udf("double")
    def mean(s: pd.Series) -> float:
        return float(s.mean())

    return spark.range(20).groupBy((F.col("id") % 3).alias("k")).agg(mean("id"))


def map_in_arrow(spark):
    import pyarrow.compute as pc

    def doubled(batches):
        for batch in batches:
            yield batch.set_column(0, "id", pc.multiply(batch.column(0), 2))

    return spark.range(20).mapInArrow(doubled, "id long")


def map_in_pandas(spark):
    def negated(frames):
        for frame in frames:
            yield -frame

    return spark.range(20).mapInPandas(negated, "id long")


def apply_in_pandas(spark):
    from pyspark.sql import functions as F

    def centred(frame):
        return frame.assign(id=frame.id - frame.id.mean())

    return spark.range(20).withColumn("k", F.col("id") % 2).groupBy("k").applyInPandas(centred, "id double, k long")


def cogroup_apply_in_pandas(spark):
    from pyspark.sql import functions as F

    left = spark.range(10).withColumn("k", F.col("id") % 2)
    right = spark.range(6).withColumn("k", F.col("id") % 2)

    def count_both(a, b):
        return pd.DataFrame({"k": [int(a.k.iloc[0])], "n": [len(a) + len(b)]})

    return left.groupBy("k").cogroup(right.groupBy("k")).applyInPandas(count_both, "k long, n long")


def registered_sql_udf(spark):
    suffix = "!"
    spark.udf.register("shout", lambda s: s.upper() + suffix, "string")
    return spark.sql("SELECT shout(CAST(id AS STRING)) FROM range(5)")


def python_udtf(spark):
    from pyspark.sql.functions import lit, udtf

    @udtf(returnType="n: int, square: int")
    class Squares:
        def eval(self, upto: int):
            for n in range(upto):
                yield n, n * n

    return Squares(lit(5))


def rdd_functions(spark):
    scale = 10
    counter = spark.sparkContext.accumulator(0)
    rdd = spark.sparkContext.parallelize(range(30), 3)
    rdd.foreach(lambda n: counter.add(n))
    return spark.createDataFrame([(counter.value,), (rdd.map(lambda n: n * scale).sum(),)], "v long")


QUERIES = [
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
]

# Spark Connect has no SparkContext, hence no RDDs.
CONNECT_QUERIES = [query for query in QUERIES if query is not rdd_functions]


def rows(df):
    return sorted(tuple(row) for row in df.collect())


def stock_and_flightpickle_rows(spark, query, stock_transport: str | None = None):
    """The query's rows with PySpark's pickling, then with flightpickle's hook.

    ``stock_transport`` is ``spark.flightpickle.transport`` of the first run only
    (``spark``: Spark's own operators, whatever the session's transport), for
    classic sessions. Fails unless the second run pickled its commands through
    flightpickle.
    """
    import flightpickle.spark

    flightpickle.spark.disable()
    run_stock = lambda: rows(query(spark))  # noqa: E731
    stock = with_transport(spark, stock_transport, run_stock) if stock_transport else run_stock()
    flightpickle.spark.enable(spark)
    try:
        before = flightpickle.spark.stats().commands
        ours = rows(query(spark))
        assert flightpickle.spark.stats().commands > before, "the query did not go through flightpickle"
    finally:
        flightpickle.spark.disable()
    return stock, ours

