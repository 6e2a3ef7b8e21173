"""The PySpark integration tests again, on one more cluster, with ``spark.flightpickle.transport=local``.

This module runs ``test_udf_kinds``'s and ``test_udfs_on_cluster``'s tests
unchanged, in one session whose confs are both modules' plus the local
transport: the Python operators the SQL extension replaces stream to each
executor's flightpickle service, the rest stay Spark's. Every UDF kind's rows
are compared with stock PySpark on Spark's own operators, in the same session;
the plan checks below make sure the replaced kinds really took flightpickle's
operator, so a silent fallback cannot pass for parity.
"""

import pytest

import flightpickle.spark
import test_udf_kinds
import test_udfs_on_cluster
import udf_kinds
from sql_operators import TRANSPORT, physical_plan
from test_udf_kinds import by_value_queries, test_same_rows_as_stock_pyspark  # noqa: F401
from test_udfs_on_cluster import *  # noqa: F403 (the tests and fixtures, collected here once more)

pytestmark = pytest.mark.spark

SPARK_CONF = {**test_udf_kinds.SPARK_CONF, **test_udfs_on_cluster.SPARK_CONF, TRANSPORT: "local"}

# The kinds whose operator the local transport replaces, and the node that replaces it.
REPLACED = {
    udf_kinds.scalar_udf: "FlightPickleArrowEvalPython",
    udf_kinds.pandas_scalar_udf: "FlightPickleArrowEvalPython",
    udf_kinds.pandas_iterator_udf: "FlightPickleArrowEvalPython",
    udf_kinds.map_in_arrow: "FlightPickleMapInArrow",
    udf_kinds.map_in_pandas: "FlightPickleMapInPandas",
    udf_kinds.apply_in_pandas: "FlightPickleFlatMapGroupsInPandas",
    udf_kinds.pandas_grouped_agg_udf: "FlightPickleArrowAggregatePython",
}


@pytest.mark.parametrize("query", REPLACED, ids=[q.__name__ for q in REPLACED])
def test_replaced_kinds_run_on_flightpickle_operators(spark, query):
    # The extension takes flightpickle's commands only (PySpark's pickles keep Spark's operators).
    flightpickle.spark.enable(spark)
    try:
        frame = query(spark)
        frame.collect()  # adaptive execution shows its final plan once it has run
        assert REPLACED[query] in physical_plan(frame)
    finally:
        flightpickle.spark.disable()


@pytest.fixture(scope="module", autouse=True)
def conf_modules_importable(local_modules):
    """``test_udfs_on_cluster``'s conf ships ``fp_conf_helpers`` by value, which every
    ``enable()`` imports: here the UDF kinds enable too, so it must import from the start."""
    yield
