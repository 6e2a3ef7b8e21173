"""The SQL extension with Spark's other types: dates, timestamps (in the
session zone, and without a zone), decimals, binary, arrays, structs and maps,
as arguments and results of the Arrow-batched ``udf`` and the scalar
``pandas_udf``, and through ``mapInPandas`` and ``mapInArrow``; several UDFs
in one operator; and what still stays on Spark's operators, with the reason
logged.

As in ``test_sql_extension.py``, each query runs twice in the one session,
through the service and with Spark's own operators, and both must give the
same rows. The functions describe what they were given (its Python or pandas
type and value), so that a conversion that differs from PySpark's shows even
where the values would round-trip.
"""

import datetime
import decimal
import sys

import pandas as pd
import pytest

from sql_operators import TRANSPORT, FallbackLog, physical_plan, shipped_by_value, with_transport

pytestmark = pytest.mark.spark

SESSION_ZONE = "America/Los_Angeles"
SPARK_CONF = {
    TRANSPORT: "local",
    "spark.task.maxFailures": "1",
    # A zone apart from the processes' own, with a daylight saving change in the data.
    "spark.sql.session.timeZone": SESSION_ZONE,
    # Several batches per partition, whose results must line up.
    "spark.sql.execution.arrow.maxRecordsPerBatch": "23",
    # Plans as they are built, to look for the operators in them.
    "spark.sql.adaptive.enabled": "false",
}
OURS = "FlightPickleArrowEvalPython"

#: Each type's column, as SQL over ``id``; every fifth row is null.
COLUMNS = {
    "day": "date_add(date'2024-01-01', cast(id as int))",
    "at": "timestamp'2024-03-10 00:30:00' + make_dt_interval(0, cast(id as int), 0, 0)",
    "wall": "timestamp_ntz'2024-03-10 00:30:00' + make_dt_interval(0, cast(id as int), 0, 0)",
    "amount": "cast(id * 1.125 as decimal(12, 3))",
    "raw": "cast(concat('b', cast(id as string)) as binary)",
    "items": "array(id, id + 1, null)",
    # Nullable fields: a pandas_udf returns structs as DataFrames, whose fields Spark takes as nullable.
    "point": "named_struct('x', nullif(id, 3), 'label', concat('p', cast(nullif(id, 3) as string)))",
    "tags": "map(concat('k', cast(id as string)), id)",
    "nested": "array(named_struct('day', date_add(date'2024-01-01', cast(id as int)),"
    " 'prices', map('a', cast(id / 8 as decimal(10, 2)))))",
}


@pytest.fixture(scope="module", autouse=True)
def by_value(spark):
    """Executors cannot import this module: its functions travel by value."""
    with shipped_by_value(spark, sys.modules[__name__]):
        yield


def typed_rows(spark, partitions=3):
    columns = [f"case when id % 5 = 0 then null else {sql} end as {name}" for name, sql in COLUMNS.items()]
    return spark.range(0, 120, numPartitions=partitions).selectExpr("id", *columns)


def both_ways(spark, query):
    """The query's rows through the service and through Spark's operators, by id."""
    ours = query.orderBy("id").collect()
    stock = with_transport(spark, "spark", lambda: query.orderBy("id").collect())
    return ours, stock


def describe(value) -> str:
    return f"{type(value).__name__}:{value!r}"


def describe_series(column):
    """Each value with its column's dtype; a struct argument comes as a DataFrame."""
    if isinstance(column, pd.DataFrame):
        return pd.Series([f"frame{list(column.columns)}:{row!r}" for row in column.itertuples(index=False)])
    return pd.Series([f"{column.dtype}:{describe(value)}" for value in column])


def same(value):
    return value


def same_series(column):
    return column


@pytest.mark.parametrize("column", list(COLUMNS))
@pytest.mark.parametrize("kind", ["udf", "pandas_udf"])
def test_each_type_as_an_argument_and_a_result(spark, kind, column):
    from pyspark.sql.functions import pandas_udf, udf

    frame = typed_rows(spark)
    data_type = frame.schema[column].dataType
    if kind == "udf":
        identity, described = udf(same, data_type), udf(describe, "string")
    else:
        identity, described = pandas_udf(same_series, data_type), pandas_udf(describe_series, "string")
    # Two UDFs of one operator: one stream carries both.
    query = frame.select("id", column, identity(column).alias("back"), described(column).alias("seen"))
    plan = physical_plan(query)
    assert plan.count(OURS) == 1 and "ArrowEvalPython " not in plan.replace(OURS, ""), plan
    ours, stock = both_ways(spark, query)
    assert ours == stock
    assert ours[1]["seen"] and ours[1]["back"] == ours[1][column] is not None
    if kind == "pandas_udf" and column == "point":
        # A struct goes to pandas as a DataFrame, which has no null rows: PySpark returns a
        # null struct as a struct of nulls.
        assert ours[0]["back"] == (None, None)
    else:
        assert all(row["back"] == row[column] for row in ours), "the value went there and back unchanged"
        assert ours[0]["back"] is None


def make_date(i):
    return datetime.date(2024, 1, 1) + datetime.timedelta(days=i)


def make_timestamp(i):
    return datetime.datetime(2024, 3, 10, 0, 30) + datetime.timedelta(hours=i)


#: A row-wise maker of each type from an id, with its return type.
ROW_MAKERS = {
    "date": (make_date, "date"),
    "timestamp": (make_timestamp, "timestamp"),
    "timestamp_ntz": (make_timestamp, "timestamp_ntz"),
    "decimal": (lambda i: decimal.Decimal(i) / 7, "decimal(12, 4)"),
    "binary": (lambda i: bytes([i % 256]) * 3, "binary"),
    "array": (lambda i: [i, None, i * 2], "array<int>"),
    "struct": (lambda i: (i, str(i)), "struct<x: int, label: string>"),
    "struct_row": (lambda i: {"x": i, "label": "r"}, "struct<x: int, label: string>"),
    "map": (lambda i: {str(i): float(i)}, "map<string, double>"),
    "nested": (lambda i: [{"when": make_timestamp(i), "amounts": [decimal.Decimal(i)]}],
               "array<struct<when: timestamp, amounts: array<decimal(5, 1)>>>"),
}

#: The same makers over a pandas Series of ids.
PANDAS_MAKERS = {
    "date": (lambda ids: ids.map(make_date), "date"),
    # Wall-clock times in the session zone: none in its daylight saving gap, where PySpark fails.
    "timestamp": (lambda ids: pd.Timestamp("2024-03-11 00:30") + pd.to_timedelta(ids, unit="h"), "timestamp"),
    "timestamp_ntz": (lambda ids: pd.Timestamp("2024-03-10 00:30") + pd.to_timedelta(ids, unit="h"), "timestamp_ntz"),
    # Spark converts pandas results safely by default: a digit beyond the scale would fail.
    "decimal": (lambda ids: ids.map(lambda i: (decimal.Decimal(i) / 7).quantize(decimal.Decimal("0.0001"))),
                "decimal(12, 4)"),
    "binary": (lambda ids: ids.map(lambda i: bytes([i % 256]) * 3), "binary"),
    "array": (lambda ids: ids.map(lambda i: [i, None, i * 2]), "array<int>"),
    "struct": (lambda ids: pd.DataFrame({"label": ids.astype(str), "x": ids}), "struct<x: int, label: string>"),
    "map": (lambda ids: ids.map(lambda i: {str(i): float(i)}), "map<string, double>"),
}


@pytest.mark.parametrize("made", list(ROW_MAKERS))
def test_a_udf_returns_each_type_as_spark_does(spark, made):
    from pyspark.sql.functions import udf

    maker, return_type = ROW_MAKERS[made]
    query = spark.range(0, 60, numPartitions=2).select("id", udf(maker, return_type)("id").alias("made"))
    assert OURS in physical_plan(query)
    ours, stock = both_ways(spark, query)
    assert ours == stock and ours[3]["made"] is not None


@pytest.mark.parametrize("made", list(PANDAS_MAKERS))
def test_a_pandas_udf_returns_each_type_as_spark_does(spark, made):
    from pyspark.sql.functions import pandas_udf

    maker, return_type = PANDAS_MAKERS[made]
    query = spark.range(0, 60, numPartitions=2).select("id", pandas_udf(maker, return_type)("id").alias("made"))
    assert OURS in physical_plan(query)
    ours, stock = both_ways(spark, query)
    assert ours == stock and ours[3]["made"] is not None


def frames_described(frames):
    for frame in frames:
        yield pd.DataFrame(
            {
                "id": frame["id"],
                "seen": [
                    "|".join(f"{name}:{frame[name].dtype}:{frame[name].iloc[i]!r}" for name in frame.columns)
                    for i in range(len(frame))
                ],
            }
        )


def frames_shifted(frames):
    for frame in frames:
        # A day later: no session time lands in the daylight saving gap, where PySpark fails.
        yield frame.assign(at=frame["at"] + pd.Timedelta(days=1), wall=frame["wall"] + pd.Timedelta(hours=1))


def batches_described(batches):
    import pyarrow as pa

    for batch in batches:
        seen = [
            "|".join(f"{name}:{batch.schema.field(name).type}:{batch.column(name)[i]!r}" for name in batch.schema.names)
            for i in range(batch.num_rows)
        ]
        yield pa.RecordBatch.from_arrays([batch.column(0), pa.array(seen)], names=["id", "seen"])


def batches_unchanged(batches):
    yield from batches


def test_map_in_pandas_with_every_type(spark):
    frame = typed_rows(spark)
    described = frame.mapInPandas(frames_described, "id long, seen string")
    shifted = frame.mapInPandas(frames_shifted, frame.schema)
    for query in (described, shifted):
        assert "FlightPickleMapInPandas" in physical_plan(query)
        ours, stock = both_ways(spark, query)
        assert ours == stock and len(ours) == 120
    # A day of wall-clock time, which is 24 hours away from the daylight saving change.
    assert ours[41]["at"] == frame.orderBy("id").collect()[41]["at"] + datetime.timedelta(days=1)


def test_map_in_arrow_with_every_type(spark):
    frame = typed_rows(spark)
    for query in (frame.mapInArrow(batches_described, "id long, seen string"), frame.mapInArrow(batches_unchanged, frame.schema)):
        assert "FlightPickleMapInArrow" in physical_plan(query)
        ours, stock = both_ways(spark, query)
        assert ours == stock and len(ours) == 120


def test_several_udfs_of_one_operator_run_in_the_service(spark):
    from pyspark.sql.functions import pandas_udf, udf

    days_later = udf(lambda day, n: None if day is None else day + datetime.timedelta(days=n), "date")
    labelled = udf(lambda point: None if point is None else f"{point.label}@{point.x}", "string")
    halved = pandas_udf(lambda amounts: amounts.map(lambda a: None if a is None else a / 2), "decimal(14, 4)")
    frame = typed_rows(spark)
    rows = frame.select("id", days_later("day", "id").alias("later"), labelled("point").alias("label"))
    series = frame.select("id", halved("amount").alias("half"), halved("id").alias("half_id"))
    for query in (rows, series):
        plan = physical_plan(query)
        assert plan.count(OURS) == 1 and "ArrowEvalPython " not in plan.replace(OURS, ""), plan
    ours, stock = both_ways(spark, rows)
    assert ours == stock
    assert ours[1]["later"] == datetime.date(2024, 1, 3) and ours[1]["label"] == "p1@1"
    ours, stock = both_ways(spark, series)
    assert ours == stock
    assert ours[1]["half"] == decimal.Decimal("0.5625") and ours[3]["half_id"] == decimal.Decimal("1.5")


def test_a_result_of_the_wrong_type_fails_the_task_with_a_clear_error(spark):
    from pyspark.sql.functions import pandas_udf, udf

    cases = [
        (udf(lambda i: "not a date", "date"), "cannot be converted to date32"),
        (udf(lambda i: ("a", "b"), "array<string>"), "do not fit its return type array<string>"),
        (pandas_udf(lambda ids: ids.astype(str), "decimal(10, 2)"), "Cannot convert the output value"),
        (pandas_udf(lambda ids: pd.DataFrame({"x": ids}), "struct<x: long not null>"), "Invalid schema"),
    ]
    for function, message in cases:
        query = spark.range(0, 10, numPartitions=1).select(function("id"))
        assert OURS in physical_plan(query)
        with pytest.raises(Exception) as ours:
            query.collect()
        assert "flightpickle executor service" in str(ours.value) and message in str(ours.value), str(ours.value)
        with pytest.raises(Exception):
            with_transport(spark, "spark", query.collect)


def describe_tuple(pair):
    """What a chained inner UDF's tuple looks like to the outer one: PySpark passes it as it is."""
    return describe(pair)


def test_chained_udfs_and_keyword_arguments_run_in_the_service(spark):
    from pyspark.sql.functions import pandas_udf, udf

    as_pair = udf(lambda day: (day, day), "struct<a: date, b: date>")
    described = udf(describe_tuple, "string")
    shifted = udf(lambda day, days=0: None if day is None else day + datetime.timedelta(days=days), "date")
    doubled = pandas_udf(lambda amounts: amounts * 2, "decimal(20, 3)")
    plus = pandas_udf(lambda amounts, extra: amounts + extra, "decimal(20, 3)")
    frame = typed_rows(spark)
    rows = frame.select(
        "id",
        described(as_pair("day")).alias("chained"),
        shifted("day", days=frame.id).alias("keyword"),
        shifted(days=frame.id, day=frame.day).alias("keywords_only"),
    )
    series = frame.select("id", doubled(doubled("amount")).alias("chained"), plus("amount", extra=frame.id).alias("keyword"))
    for query in (rows, series):
        plan = physical_plan(query)
        assert plan.count(OURS) == 1 and "ArrowEvalPython " not in plan.replace(OURS, ""), plan
    ours, stock = both_ways(spark, rows)
    assert ours == stock
    assert ours[1]["chained"] == "tuple:(datetime.date(2024, 1, 2), datetime.date(2024, 1, 2))"
    assert ours[1]["keyword"] == ours[1]["keywords_only"] == datetime.date(2024, 1, 3)
    ours, stock = both_ways(spark, series)
    assert ours == stock
    assert ours[1]["chained"] == decimal.Decimal("4.5") and ours[1]["keyword"] == decimal.Decimal("2.125")


def test_what_is_not_supported_stays_on_sparks_operator_and_the_reason_is_logged(spark):
    from pyspark.sql.functions import udf

    # A result type test_sql_extension.py does not use: the rule logs a reason once per
    # operator and reason in the driver JVM, which the Spark test modules share.
    span_of = udf(lambda i: datetime.timedelta(days=i), "interval day to second")
    plus_one = udf(lambda i: i + 1, "long")
    frame = spark.range(0, 30, numPartitions=2)
    log = FallbackLog(spark)
    try:
        # A second operator in the same tasks (Spark chains a UDF over a UDF only when it is
        # the one argument): the one below keeps the stage.
        add = udf(lambda a, b: a + b, "long")
        stacked = frame.select("id", add(plus_one("id"), "id").alias("w"))
        plan = physical_plan(stacked)
        assert plan.count(OURS) == 1 and plan.count("ArrowEvalPython") == 2, plan
        assert "another flightpickle operator runs in the same tasks" in log.text(), log.text()
        ours, stock = both_ways(spark, stacked)
        assert ours == stock and ours[4]["w"] == 9

        query = frame.select("id", span_of("id").alias("v"))
        plan = physical_plan(query)
        assert OURS not in plan and "ArrowEvalPython" in plan, plan
        reason = "its return type of type interval day to second is not supported yet"
        assert f"ArrowEvalPython stays Spark's operator: {reason}" in log.text(), log.text()
        ours, stock = both_ways(spark, query)
        assert ours == stock and ours[4]["v"] == datetime.timedelta(days=4)
        legacy = "spark.sql.legacy.execution.pythonUDF.pandas.conversion.enabled"
        spark.conf.set(legacy, "true")
        try:
            assert OURS not in physical_plan(frame.select(plus_one("id")))
        finally:
            spark.conf.unset(legacy)
        assert f"{legacy} is true; PySpark's legacy conversions are not supported" in log.text(), log.text()
    finally:
        log.close()
