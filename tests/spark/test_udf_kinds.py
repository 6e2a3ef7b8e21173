"""Every kind of Python UDF gives the same rows with flightpickle as with stock PySpark.

The queries (``udf_kinds``) are built from a lambda, a closure, a local class
and an enum, which all travel by value, and each runs twice on the cluster:
once with PySpark's own pickling, once with flightpickle's hook, whose command
count must grow.
"""

import pytest

import flightpickle
import udf_kinds
from udf_kinds import QUERIES, stock_and_flightpickle_rows

pytestmark = pytest.mark.spark

SPARK_CONF = {"spark.python.daemon.module": "flightpickle.spark.daemon"}


@pytest.fixture(scope="module", autouse=True)
def by_value_queries():
    """Executors cannot import the queries' module: both picklers ship it by value."""
    from pyspark import cloudpickle

    flightpickle.register_pickle_by_value(udf_kinds)
    cloudpickle.register_pickle_by_value(udf_kinds)
    yield
    flightpickle.unregister_pickle_by_value(udf_kinds)
    cloudpickle.unregister_pickle_by_value(udf_kinds)


@pytest.mark.parametrize("query", QUERIES, ids=[q.__name__ for q in QUERIES])
def test_same_rows_as_stock_pyspark(spark, query):
    # Stock PySpark runs on Spark's own operators even where the module's transport is flightpickle's.
    stock, ours = stock_and_flightpickle_rows(spark, query, stock_transport="spark")
    assert ours == stock
    assert stock, "an empty result would compare equal without testing anything"
