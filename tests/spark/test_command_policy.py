"""The plugin's command check refuses every kind of Python UDF at analysis.

One session with ``requireSigned`` (key derived from spark.authenticate.secret)
and ``allowedModules=math``: each kind of UDF whose pickle imports ``os`` fails
with an AnalysisException naming it when the DataFrame is built, before any
job; a signed UDF importing only ``math`` runs; and with flightpickle switched
off, PySpark's own unsigned command is refused.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Iterator

import pandas as pd  # at module level: PySpark resolves pandas_udf type hints through it
import pytest

import flightpickle
import flightpickle.spark

pytestmark = pytest.mark.spark

SPARK_CONF = {
    "spark.authenticate.secret": "a secret for the policy tests",
    "spark.flightpickle.requireSigned": "true",
    "spark.flightpickle.allowedModules": "math,pandas,numpy",
}


@pytest.fixture(scope="module", autouse=True)
def by_value_test_module():
    """Executors cannot import this module: ship it by value, as a notebook would."""
    module = sys.modules[__name__]
    flightpickle.register_pickle_by_value(module)
    yield
    flightpickle.unregister_pickle_by_value(module)


def pid_plus(n):
    return os.getpid() + n


def scalar(spark):
    from pyspark.sql import functions as F

    return spark.range(3).select(F.udf(pid_plus, "long")("id"))


def pandas_scalar(spark):
    from pyspark.sql.functions import pandas_udf

    @pandas_udf("long")
    def pids(n: pd.Series) -> pd.Series:
        return n + os.getpid()

    return spark.range(3).select(pids("id"))


def map_in_pandas(spark):
    def pids(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for batch in batches:
            yield batch.assign(id=batch.id + os.getpid())

    return spark.range(3).mapInPandas(pids, "id long")


def grouped_apply_in_pandas(spark):
    def pids(group: pd.DataFrame) -> pd.DataFrame:
        return group.assign(id=os.getpid())

    return spark.range(3).groupBy("id").applyInPandas(pids, "id long")


def registered_for_sql(spark):
    spark.udf.register("pid_plus", pid_plus, "long")
    return spark.sql("SELECT pid_plus(id) FROM range(3)")


def udtf(spark):
    from pyspark.sql.functions import lit, udtf

    @udtf(returnType="pid: int")
    class Pids:
        def eval(self, n: int):
            yield (os.getpid() + n,)

    return Pids(lit(1))


@pytest.mark.parametrize(
    "build, name",
    [
        (scalar, "pid_plus"),
        (pandas_scalar, "pids"),
        (map_in_pandas, "pids"),
        (grouped_apply_in_pandas, "pids"),
        (registered_for_sql, "pid_plus"),
        (udtf, "Pids"),
    ],
    ids=lambda value: getattr(value, "__name__", value),
)
def test_a_udf_importing_os_is_refused_when_the_dataframe_is_built(spark, build, name):
    from pyspark.errors import AnalysisException

    assert flightpickle.spark.is_enabled()
    jobs_before = len(spark.sparkContext.statusTracker().getJobIdsForGroup())
    with pytest.raises(AnalysisException) as refused:
        build(spark).collect()
    message = str(refused.value)
    assert f"flightpickle refused the Python UDF '{name}': its command imports os, outside" in message, message
    assert len(spark.sparkContext.statusTracker().getJobIdsForGroup()) == jobs_before


def test_signed_udfs_within_the_allow_list_run(spark):
    from pyspark.sql import functions as F

    hypot = F.udf(lambda n: math.hypot(n, 0.0), "double")
    rows = spark.range(0, 20, numPartitions=4).select(hypot("id").alias("h")).collect()
    assert sorted(r.h for r in rows) == [float(n) for n in range(20)]

    def halves(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for batch in batches:
            yield batch.assign(id=batch.id // 2)

    assert sorted(r.id for r in spark.range(6).mapInPandas(halves, "id long").collect()) == [0, 0, 1, 1, 2, 2]


def test_pysparks_own_unsigned_command_is_refused(spark):
    from pyspark.errors import AnalysisException
    from pyspark.sql import functions as F

    flightpickle.spark.disable()
    try:
        with pytest.raises(AnalysisException, match="not a sealed, signed flightpickle payload"):
            spark.range(3).select(F.udf(lambda n: math.floor(n), "long")("id")).collect()
    finally:
        flightpickle.spark.enable(spark)
