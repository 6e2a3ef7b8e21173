"""PySpark UDF commands, ``(func, returnType)``, with the types the Spark
plugin sends: dates, timestamps (with the session zone, and without),
decimals, binary, arrays, structs and maps, as arguments and results of the
row-wise ``udf``, the scalar ``pandas_udf`` and ``mapInPandas``.

Batches are built as Spark builds them (``to_arrow_schema`` with the session
zone, ``element`` list children), and what the function sees and what comes
back are checked against what PySpark's worker gives for the same eval type.
"""

from __future__ import annotations

import datetime
import itertools
import json
import decimal
import os
import time

import pandas as pd
import pyarrow as pa
import pytest
from pyspark.sql import Row
from pyspark.sql.pandas.types import to_arrow_schema
from pyspark.sql.types import (
    ArrayType,
    BinaryType,
    DateType,
    DecimalType,
    LongType,
    MapType,
    StringType,
    StructField,
    StructType,
    TimestampNTZType,
    TimestampType,
)

import flightpickle.executor as executor
from flightpickle.executor.kinds import StreamSpec
from flightpickle.executor.spark_commands import SparkCommand
from flightpickle.executor.spark_kinds import BUNDLE_KINDS, COMMAND_KINDS, session_time_zone
from flightpickle.executor.udf_bundle import UdfBundle

pytestmark = pytest.mark.timeout(120)

SESSION_ZONE = "America/Los_Angeles"
POINT = StructType([StructField("x", LongType()), StructField("label", StringType())])
UTC = datetime.timezone.utc
INSTANT = datetime.datetime(2024, 3, 1, 12, 30, 5, 250000, tzinfo=UTC)
WALL_CLOCK = datetime.datetime(2024, 3, 1, 9, 15)


@pytest.fixture(autouse=True)
def process_zone():
    """A process zone apart from UTC and the session's, as a worker's may be:
    the row-wise udf shows timestamps in it, pandas_udf in the session's."""
    before = os.environ.get("TZ")
    os.environ["TZ"] = "Asia/Tokyo"
    time.tzset()
    yield
    if before is None:
        del os.environ["TZ"]
    else:
        os.environ["TZ"] = before
    time.tzset()


def spark_schema(*types) -> pa.Schema:
    """The Arrow schema Spark declares for these types, in the session zone."""
    struct = StructType([StructField(f"_{i}", t) for i, t in enumerate(types)])
    return to_arrow_schema(struct, timezone=SESSION_ZONE)


def spark_batch(columns: dict) -> pa.RecordBatch:
    """A batch of Spark's types: ``{spark type: values}``, values as pyarrow takes them."""
    schema = spark_schema(*columns)
    return pa.RecordBatch.from_arrays(
        [pa.array(values, field.type) for values, field in zip(columns.values(), schema)], schema=schema
    )


def run(kind, func, return_type, batch):
    spec = StreamSpec(kind, batch.schema, spark_schema(return_type), False, [])
    command = SparkCommand(func, return_type)
    if kind == "map_pandas":
        spec = StreamSpec(kind, batch.schema, to_arrow_schema(return_type, timezone=SESSION_ZONE), False, [])
    if kind in BUNDLE_KINDS:
        results = list(BUNDLE_KINDS[kind](UdfBundle.of(command, batch.num_columns), spec, iter([batch])))
    else:
        results = list(COMMAND_KINDS[kind](command, spec, iter([batch])))
    for result in results:
        assert result.schema.equals(spec.output_schema), "results have exactly the declared types"
    return results


def values(results):
    return [value for batch in results for value in batch.column(0).to_pylist()]


ARGUMENTS = {
    DateType(): [datetime.date(2024, 2, 29), None],
    TimestampType(): [INSTANT, None],
    TimestampNTZType(): [WALL_CLOCK, None],
    DecimalType(10, 2): [decimal.Decimal("12.34"), None],
    BinaryType(): [b"\x00\xffab", None],
    ArrayType(LongType()): [[1, None, 3], None],
    POINT: [{"x": 1, "label": "a"}, None],
    MapType(StringType(), LongType()): [[("k", 7)], None],
}

def row_value(type_name: str):
    """What the row-wise udf gets for the first value of each type in ARGUMENTS."""
    if type_name == "timestamp":
        return INSTANT.astimezone().replace(tzinfo=None)  # in the process's zone, naive
    return ROW_VALUES[type_name]


ROW_VALUES = {
    "date": datetime.date(2024, 2, 29),
    "timestamp_ntz": WALL_CLOCK,
    "decimal(10,2)": decimal.Decimal("12.34"),
    "binary": b"\x00\xffab",
    "array<bigint>": [1, None, 3],
    "struct<x:bigint,label:string>": Row(x=1, label="a"),
    "map<string,bigint>": {"k": 7},
}


@pytest.mark.parametrize("spark_type", list(ARGUMENTS), ids=lambda t: t.simpleString())
def test_a_row_udf_gets_pysparks_python_values_and_its_result_returns_unchanged(spark_type):
    seen = []

    def identity(value):
        seen.append(value)
        return value

    batch = spark_batch({spark_type: ARGUMENTS[spark_type]})
    results = run("scalar_row", identity, spark_type, batch)
    expected = row_value(spark_type.simpleString())
    assert seen == [expected, None] and type(seen[0]) is type(expected)
    assert expected != INSTANT.replace(tzinfo=None) or spark_type != TimestampType(), "the zone mattered"
    assert results[0].column(0).equals(batch.column(0)), "the value went back to what Spark sent"


def test_a_row_udf_returns_each_type_from_python_values():
    cases = [
        (DateType(), datetime.date(2020, 1, 2), datetime.date(2020, 1, 2)),
        (TimestampType(), datetime.datetime(2020, 1, 2, 3, 4, 5), datetime.datetime(2020, 1, 2, 3, 4, 5).astimezone(UTC)),
        (TimestampNTZType(), datetime.datetime(2020, 1, 2, 3, 4, 5), datetime.datetime(2020, 1, 2, 3, 4, 5)),
        (DecimalType(10, 2), decimal.Decimal("1.005"), decimal.Decimal("1.00")),  # rounded half even to the scale
        (BinaryType(), bytearray(b"ab"), b"ab"),
        (ArrayType(StringType()), ["a", None], ["a", None]),
        (POINT, Row(x=2, label="b"), {"x": 2, "label": "b"}),
        (POINT, (3, "c"), {"x": 3, "label": "c"}),
        (MapType(StringType(), LongType()), {"a": 1}, [("a", 1)]),
    ]
    for spark_type, returned, expected in cases:
        results = run("scalar_row", lambda _: returned, spark_type, spark_batch({LongType(): [1]}))
        got = values(results)[0]
        if isinstance(got, datetime.datetime) and got.tzinfo is not None:
            got = got.astimezone(UTC)
        assert got == expected, spark_type


def test_a_row_udf_result_of_the_wrong_type_is_a_clear_error():
    with pytest.raises(TypeError, match="cannot be converted to date32"):
        run("scalar_row", lambda _: "not a date", DateType(), spark_batch({LongType(): [1]}))
    with pytest.raises(TypeError, match=r"\(list of tuple\) do not fit its return type array<string>"):
        run("scalar_row", lambda _: ("a", "b"), ArrayType(StringType()), spark_batch({LongType(): [1]}))


#: What the pandas_udf gets for each type in ARGUMENTS: (dtype, first value).
PANDAS_VALUES = {
    "date": (object, datetime.date(2024, 2, 29)),
    "timestamp": ("datetime64[ns]", pd.Timestamp(INSTANT).tz_convert(SESSION_ZONE).tz_localize(None)),
    "timestamp_ntz": ("datetime64[ns]", pd.Timestamp(WALL_CLOCK)),
    "decimal(10,2)": (object, decimal.Decimal("12.34")),
    "binary": (object, b"\x00\xffab"),
    "map<string,bigint>": (object, {"k": 7}),
}


@pytest.mark.parametrize("spark_type", [t for t in ARGUMENTS if t.simpleString() in PANDAS_VALUES], ids=str)
def test_a_pandas_udf_gets_pysparks_series_and_its_result_returns_unchanged(spark_type):
    seen = []

    def identity(series):
        seen.append(series)
        return series

    batch = spark_batch({spark_type: ARGUMENTS[spark_type]})
    results = run("scalar_pandas", identity, spark_type, batch)
    dtype, first = PANDAS_VALUES[spark_type.simpleString()]
    assert seen[0].dtype == dtype
    assert seen[0][0] == first and pd.isna(seen[0][1])
    assert results[0].column(0).equals(batch.column(0))


def test_a_pandas_udf_gets_a_struct_as_a_dataframe_and_returns_one():
    seen = []

    def swap_labels(points):
        seen.append(points)
        return pd.DataFrame({"label": points["label"].str.upper(), "x": points["x"] * 10})

    batch = spark_batch({POINT: [{"x": 1, "label": "a"}, {"x": 2, "label": "b"}]})
    results = run("scalar_pandas", swap_labels, POINT, batch)
    assert isinstance(seen[0], pd.DataFrame) and list(seen[0].columns) == ["x", "label"]
    assert values(results) == [{"x": 10, "label": "A"}, {"x": 20, "label": "B"}], "columns matched by name"


def test_a_pandas_udf_gets_arrays_as_numpy_arrays_and_returns_lists():
    seen = []

    def lengths(arrays):
        seen.append(arrays)
        return arrays.map(lambda a: list(a) + [len(a)])

    batch = spark_batch({ArrayType(LongType()): [[1, 2], [3]]})
    results = run("scalar_pandas", lengths, ArrayType(LongType()), batch)
    assert type(seen[0][0]).__name__ == "ndarray"
    assert values(results) == [[1, 2, 2], [3, 1]]


def test_a_pandas_udf_returns_timestamps_in_the_session_zone():
    batch = spark_batch({LongType(): [1]})
    results = run("scalar_pandas", lambda s: pd.Series([pd.Timestamp("2024-01-01 08:00")] * len(s)), TimestampType(), batch)
    expected = pd.Timestamp("2024-01-01 08:00", tz=SESSION_ZONE)
    assert values(results)[0] == expected.to_pydatetime()


def test_a_pandas_udf_that_returns_a_series_for_a_struct_is_a_clear_error():
    with pytest.raises(ValueError, match="returns a pandas.DataFrame when the specified return type is StructType"):
        run("scalar_pandas", lambda s: s, POINT, spark_batch({LongType(): [1]}))


def test_a_pandas_udf_result_of_the_wrong_type_is_a_clear_error():
    with pytest.raises(TypeError, match="Cannot convert the output value"):
        run("scalar_pandas", lambda s: pd.Series(["x"] * len(s)), DecimalType(10, 2), spark_batch({LongType(): [1]}))


def test_map_in_pandas_gets_pysparks_frames_and_returns_each_type():
    schema = StructType(
        [StructField("id", LongType()), StructField("at", TimestampType()), StructField("point", POINT)]
    )
    batch = pa.RecordBatch.from_arrays(
        [pa.array([1, 2]), pa.array([INSTANT, None]), pa.array([{"x": 5, "label": "e"}, None])],
        schema=to_arrow_schema(schema, timezone=SESSION_ZONE),
    )
    seen = []

    def shift(frames):
        for frame in frames:
            seen.append(frame)
            yield frame.assign(at=frame["at"] + pd.Timedelta(hours=1))

    results = run("map_pandas", shift, schema, batch)
    assert str(seen[0]["at"].dtype) == "datetime64[ns]"
    assert seen[0]["at"][0] == pd.Timestamp(INSTANT).tz_convert(SESSION_ZONE).tz_localize(None)
    assert seen[0]["point"][0] == {"x": 5, "label": "e"}
    assert results[0].column(1).to_pylist()[0].astimezone(UTC) == INSTANT + datetime.timedelta(hours=1)
    assert results[0].column(2).to_pylist() == [{"x": 5, "label": "e"}, None]


def test_map_in_pandas_with_missing_columns_is_a_clear_error():
    schema = StructType([StructField("id", LongType()), StructField("day", DateType())])
    batch = pa.RecordBatch.from_arrays(
        [pa.array([1]), pa.array([datetime.date(2024, 1, 1)])], schema=to_arrow_schema(schema, timezone=SESSION_ZONE)
    )
    with pytest.raises(Exception, match="day"):
        run("map_pandas", lambda frames: (f[["id"]] for f in frames), schema, batch)


def test_the_session_zone_is_the_zone_of_the_streams_timestamps():
    nested = pa.schema([("a", pa.list_(pa.struct([("t", pa.timestamp("us", tz="Europe/Paris"))])))])
    assert session_time_zone(pa.schema([("x", pa.int64())]), nested) == "Europe/Paris"
    assert session_time_zone(pa.schema([("x", pa.timestamp("us"))])) == "UTC", "no zone: nothing to convert"


def test_the_service_converts_a_sealed_command_as_pyspark_does(service):
    """A command's udf gets a naive local datetime, as in PySpark; a plain
    function gets the zone-aware one pyarrow makes."""

    def is_naive(moment):  # local, so that it travels by value
        return moment.tzinfo is None

    from pyspark.sql.types import BooleanType

    client = executor.connect(service.uri, timeout=30)
    batch = spark_batch({TimestampType(): [INSTANT]})
    assert values(client.map((is_naive, BooleanType()), [batch], return_type=pa.bool_())) == [True]
    assert values(client.map(is_naive, [batch], return_type=pa.bool_())) == [False]


def with_confs(batch: pa.RecordBatch, **confs: str) -> pa.RecordBatch:
    """``batch`` with the session's conversion confs, as the Spark plugin sends them."""
    keys = {
        "binary_as_bytes": "spark.sql.execution.pyspark.binaryAsBytes",
        "safecheck": "spark.sql.execution.pandas.convertToArrowArraySafely",
        "max_records": "spark.sql.execution.arrow.maxRecordsPerBatch",
        "any_iterable": "spark.sql.execution.pythonUDF.mapInBatch.legacy.acceptAnyIterable.enabled",
    }
    return batch.replace_schema_metadata({b"flightpickle.spark.conf": json.dumps({keys[k]: v for k, v in confs.items()})})


def test_the_sessions_conversion_confs_travel_with_the_input_schema():
    seen = []
    binary = spark_batch({BinaryType(): [b"ab"]})
    run("scalar_row", lambda value: seen.append(value) or bytes(value), BinaryType(), with_confs(binary, binary_as_bytes="false"))
    assert type(seen[0]) is bytearray, "binaryAsBytes=false gives bytearrays, as in PySpark"

    def sevenths(ids):
        return pd.Series([decimal.Decimal(1) / 7] * len(ids))

    numbers = spark_batch({LongType(): [1]})
    assert values(run("scalar_pandas", sevenths, DecimalType(12, 4), with_confs(numbers, safecheck="false"))) == [
        decimal.Decimal("0.1428")
    ]
    with pytest.raises(Exception, match="unsafe conversions"):
        run("scalar_pandas", sevenths, DecimalType(12, 4), with_confs(numbers, safecheck="true"))


def test_a_result_whose_spark_type_differs_from_the_declared_one_fails_as_in_spark():
    """A DataFrame returned for a struct has nullable fields: Spark refuses it for a struct whose
    fields are not nullable (ARROW_TYPE_MISMATCH), and so does the service."""
    strict = StructType([StructField("x", LongType(), False)])
    with pytest.raises(TypeError, match="Invalid schema from the Python function"):
        run("scalar_pandas", lambda ids: pd.DataFrame({"x": ids}), strict, spark_batch({LongType(): [1]}))


def run_iterator(func, return_type, batches: list[pa.RecordBatch]) -> list[pa.RecordBatch]:
    """An iterator ``pandas_udf`` over several batches, as one stream."""
    spec = StreamSpec("scalar_pandas_iter", batches[0].schema, spark_schema(return_type), False, [])
    command = SparkCommand(func, return_type)
    results = list(BUNDLE_KINDS["scalar_pandas_iter"](UdfBundle.of(command, batches[0].num_columns), spec, iter(batches)))
    for result in results:
        assert result.schema.equals(spec.output_schema), "results have exactly the declared types"
    return results


def long_batches(*sizes: int) -> list[pa.RecordBatch]:
    """Batches of one bigint column numbering their rows from 0 on, of these sizes."""
    batches, start = [], 0
    for size in sizes:
        batches.append(spark_batch({LongType(): list(range(start, start + size))}))
        start += size
    return batches


def test_an_iterator_pandas_udf_is_called_once_with_pysparks_series_of_every_batch():
    calls, seen = [], []

    def local_hours(moments):
        calls.append(1)
        for series in moments:
            seen.append(series)
            yield series.dt.hour

    batches = [spark_batch({TimestampType(): [INSTANT, None]}), spark_batch({TimestampType(): [INSTANT]})]
    results = run_iterator(local_hours, LongType(), batches)
    assert len(calls) == 1 and len(seen) == 2
    # As for the scalar pandas_udf: naive wall-clock time in the session zone.
    assert str(seen[0].dtype) == "datetime64[ns]" and seen[0][0] == pd.Timestamp("2024-03-01 04:30:05.25")
    assert values(results) == [4, None, 4], "12:30 UTC is 04:30 in the session zone"


def test_an_iterator_pandas_udf_of_several_arguments_gets_tuples_and_may_split_its_results_its_own_way():
    def sums_in_halves(pairs):
        # Everything first, then the results in two pieces of other sizes than the batches'.
        taken = [a + b for a, b in pairs]
        whole = pd.concat(taken, ignore_index=True)
        middle = len(whole) // 3
        yield whole[:middle]
        yield whole[middle:]

    pairs = spark_schema(LongType(), LongType())
    batches = [pa.RecordBatch.from_arrays([b.column(0), b.column(0)], schema=pairs) for b in long_batches(4, 5)]
    results = run_iterator(sums_in_halves, LongType(), batches)
    assert [batch.num_rows for batch in results] == [3, 6]
    assert values(results) == [2 * i for i in range(9)]


def test_an_iterator_pandas_udf_gets_structs_as_dataframes_and_returns_dataframes_for_a_struct():
    def upper_labels(points):
        for frame in points:
            yield pd.DataFrame({"label": frame["label"].str.upper(), "x": frame["x"] + 1})

    batches = [spark_batch({POINT: [{"x": 1, "label": "a"}]}), spark_batch({POINT: [{"x": 2, "label": "b"}]})]
    assert values(run_iterator(upper_labels, POINT, batches)) == [{"x": 2, "label": "A"}, {"x": 3, "label": "B"}]
    with pytest.raises(Exception, match="UDF_RETURN_TYPE"):
        run_iterator(lambda points: (frame["x"] for frame in points), POINT, batches)


def test_an_iterator_pandas_udf_returning_more_rows_than_it_took_fails_as_pyspark_does():
    def doubled_rows(series):
        for part in series:
            yield pd.concat([part, part], ignore_index=True)

    with pytest.raises(Exception, match="OUTPUT_EXCEEDS_INPUT_ROWS"):
        run_iterator(doubled_rows, LongType(), long_batches(3, 3))


def test_an_iterator_pandas_udf_returning_fewer_rows_than_it_took_fails_as_pyspark_does():
    def first_rows(series):
        for part in series:
            yield part[:1]

    with pytest.raises(Exception, match=r"RESULT_ROWS_MISMATCH.*\(2\).*\(6\)"):
        run_iterator(first_rows, LongType(), long_batches(3, 3))


def test_an_iterator_pandas_udf_that_leaves_input_unread_fails_as_pyspark_does():
    def first_batch_only(series):
        yield next(series)

    with pytest.raises(Exception, match="INPUT_NOT_FULLY_CONSUMED"):
        run_iterator(first_batch_only, LongType(), long_batches(3, 3))


def test_an_iterator_pandas_udf_that_returns_no_iterator_fails_as_pyspark_does():
    with pytest.raises(Exception, match="UDF_RETURN_TYPE"):
        run_iterator(lambda series: [next(series)], LongType(), long_batches(2))


def test_the_service_streams_an_iterator_pandas_udf_that_takes_everything_before_it_yields(service):
    """More batches than the window, all taken before the first result: the
    service acknowledges each as it is taken, so the client's sends never
    wait on results that cannot come yet."""

    def running_total(series):  # local, so that it travels by value
        totals = pd.concat(list(series), ignore_index=True).cumsum()
        for start in range(0, len(totals), 7):
            yield totals[start : start + 7]

    client = executor.connect(service.uri, timeout=30, window=2)
    batches = long_batches(*[5] * 12)
    results = list(client.map((running_total, LongType()), batches, kind="scalar_pandas_iter", return_type=pa.int64()))
    assert values(results) == list(itertools.accumulate(range(60)))
    assert [batch.num_rows for batch in results] == [7] * 8 + [4]


def test_the_service_reports_an_iterator_pandas_udfs_failure_with_its_traceback(service):
    def fails_on_second(series):
        for index, part in enumerate(series):
            if index == 1:
                raise ArithmeticError("the second batch is not welcome")
            yield part

    client = executor.connect(service.uri, timeout=30)
    with pytest.raises(executor.UdfError, match="(?s)Traceback.*fails_on_second.*the second batch is not welcome"):
        list(client.map((fails_on_second, LongType()), long_batches(2, 2), kind="scalar_pandas_iter", return_type=pa.int64()))
    with pytest.raises(executor.ProtocolError, match="PySpark UDF commands only"):
        list(client.map(lambda series: series, long_batches(2), kind="scalar_pandas_iter", return_type=pa.int64()))


def test_a_grouped_aggregate_pandas_udf_answers_each_group_with_one_value_converted_as_pyspark_does():
    seen = []

    def mean_day(moments, numbers):
        seen.append((moments, numbers))
        return moments.min() + pd.Timedelta(days=float(numbers.mean()))

    schema = spark_schema(TimestampType(), LongType())
    groups = [
        pa.RecordBatch.from_arrays([pa.array([INSTANT, None], schema.field(0).type), pa.array([1, 3])], schema=schema),
        pa.RecordBatch.from_arrays([pa.array([INSTANT], schema.field(0).type), pa.array([0])], schema=schema),
    ]
    spec = StreamSpec("grouped_agg_pandas", schema, spark_schema(TimestampType()), False, [])
    command = SparkCommand(mean_day, TimestampType())
    results = list(BUNDLE_KINDS["grouped_agg_pandas"](UdfBundle.of(command, 2), spec, iter(groups)))
    assert [batch.num_rows for batch in results] == [1, 1], "one row per group"
    assert all(batch.schema.equals(spec.output_schema) for batch in results)
    assert str(seen[0][0].dtype) == "datetime64[ns]", "session-zone wall clock, as for the scalar pandas_udf"
    assert values(results) == [INSTANT + datetime.timedelta(days=2), INSTANT]


def grouped_arrow_input():
    """Two groups keyed by column ``_0`` (longs), with a timestamp column, as Spark sends them."""
    schema = spark_schema(LongType(), TimestampType())
    return [
        pa.RecordBatch.from_arrays([pa.array([1, 1]), pa.array([INSTANT, None], schema.field(1).type)], schema=schema),
        pa.RecordBatch.from_arrays([pa.array([2]), pa.array([INSTANT], schema.field(1).type)], schema=schema),
    ]


def run_grouped_arrow(kind, func, return_type: StructType):
    groups = grouped_arrow_input()
    spec = StreamSpec(kind, groups[0].schema, to_arrow_schema(return_type, timezone=SESSION_ZONE), False, ["_0"])
    results = list(COMMAND_KINDS[kind](SparkCommand(func, return_type), spec, iter(groups)))
    assert len(results) == len(groups), "one result batch per group"
    for result in results:
        assert result.schema.equals(spec.output_schema), "results have exactly the declared types"
    return results


KEYED_COUNT = StructType([StructField("key", LongType()), StructField("n", LongType()), StructField("nulls", LongType())])


def test_apply_in_arrow_gets_each_group_as_a_table_and_its_columns_are_matched_by_name():
    seen = []

    def count(table):
        seen.append(table)
        # Columns in another order than declared: PySpark matches them by name.
        return pa.table({"n": [table.num_rows], "nulls": [table.column("_1").null_count], "key": table.column("_0").slice(0, 1)})

    results = run_grouped_arrow("grouped_map_arrow", count, KEYED_COUNT)
    assert all(isinstance(table, pa.Table) for table in seen)
    assert seen[0].schema.field("_1").type.tz == SESSION_ZONE, "Arrow data as Spark sends it, no conversions"
    assert [batch.to_pylist() for batch in results] == [
        [{"key": 1, "n": 2, "nulls": 1}],
        [{"key": 2, "n": 1, "nulls": 0}],
    ]


def test_apply_in_arrow_with_two_parameters_gets_the_key_as_a_tuple_of_arrow_scalars():
    keys = []

    def count(key, table):
        keys.append(key)
        return pa.table({"key": [key[0].as_py()], "n": [table.num_rows], "nulls": [table.column("_1").null_count]})

    results = run_grouped_arrow("grouped_map_arrow", count, KEYED_COUNT)
    assert [type(key) for key in keys] == [tuple, tuple]
    assert all(isinstance(key[0], pa.Int64Scalar) for key in keys)
    assert [key[0].as_py() for key in keys] == [1, 2]
    assert [batch.column("n").to_pylist() for batch in results] == [[2], [1]]


def test_apply_in_arrow_of_an_iterator_gets_each_group_and_may_yield_several_batches():
    def halves(key, batches):
        for batch in batches:
            for row in range(batch.num_rows):
                yield pa.RecordBatch.from_pydict(
                    {"key": [key[0].as_py()], "n": [row], "nulls": [int(not batch.column(1)[row].is_valid)]}
                )

    results = run_grouped_arrow("grouped_map_arrow_iter", halves, KEYED_COUNT)
    assert [batch.to_pylist() for batch in results] == [
        [{"key": 1, "n": 0, "nulls": 0}, {"key": 1, "n": 1, "nulls": 1}],
        [{"key": 2, "n": 0, "nulls": 0}],
    ]


def test_apply_in_arrow_may_return_no_rows_for_a_group():
    results = run_grouped_arrow("grouped_map_arrow", lambda table: KEYED_COUNT_EMPTY, KEYED_COUNT)
    assert [batch.num_rows for batch in results] == [0, 0]


KEYED_COUNT_EMPTY = pa.table({"key": pa.array([], pa.int64()), "n": pa.array([], pa.int64()), "nulls": pa.array([], pa.int64())})


@pytest.mark.parametrize(
    "kind, func, error",
    [
        ("grouped_map_arrow", lambda table: pa.table({"key": [1], "n": [2]}), "RESULT_COLUMN_NAMES_MISMATCH"),
        ("grouped_map_arrow", lambda table: pa.table({"key": [1], "n": ["2"], "nulls": [0]}), "RESULT_COLUMN_TYPES_MISMATCH"),
        ("grouped_map_arrow", lambda table: table.to_batches()[0], "UDF_RETURN_TYPE"),
        ("grouped_map_arrow_iter", lambda batches: [pa.table({"key": [1]})], "UDF_RETURN_TYPE"),
    ],
)
def test_apply_in_arrow_results_that_do_not_fit_the_schema_fail_as_pyspark_does(kind, func, error):
    with pytest.raises(Exception, match=error):
        run_grouped_arrow(kind, func, KEYED_COUNT)


def test_apply_in_arrow_rows_without_columns_are_a_clear_error_and_an_empty_table_is_no_rows():
    assert [b.num_rows for b in run_grouped_arrow("grouped_map_arrow", lambda table: pa.table({}), KEYED_COUNT)] == [0, 0]
    with pytest.raises(TypeError, match="rows without columns"):
        run_grouped_arrow("grouped_map_arrow", lambda table: table.select([]), KEYED_COUNT)


def batch_sizes(key, batches):
    yield pa.RecordBatch.from_pydict({"key": [key[0].as_py()], "sizes": [",".join(str(b.num_rows) for b in batches)]})


SIZES = StructType([StructField("key", LongType()), StructField("sizes", StringType())])


@pytest.mark.parametrize(
    "max_records, sizes",
    [(None, "5"), ("2", "2,2,1"), ("5", "5"), ("0", "5"), ("-1", "5")],
)
def test_apply_in_arrow_of_an_iterator_gets_a_group_in_batches_of_the_sessions_max_records(max_records, sizes):
    """Spark hands the iterator form a group in batches of
    spark.sql.execution.arrow.maxRecordsPerBatch rows (no limit at 0 or less;
    10,000 when the stream does not say)."""
    group = pa.record_batch({"_0": pa.array([7] * 5, pa.int64()), "_1": pa.array(range(5), pa.int64())})
    if max_records is not None:
        group = with_confs(group, max_records=max_records)
    spec = StreamSpec("grouped_map_arrow_iter", group.schema, to_arrow_schema(SIZES), False, ["_0"])
    results = list(COMMAND_KINDS["grouped_map_arrow_iter"](SparkCommand(batch_sizes, SIZES), spec, iter([group])))
    assert [batch.to_pylist() for batch in results] == [[{"key": 7, "sizes": sizes}]]


def test_a_max_records_conf_that_is_not_a_number_is_a_clear_error():
    group = with_confs(pa.record_batch({"_0": [1]}), max_records="many")
    spec = StreamSpec("grouped_map_arrow_iter", group.schema, to_arrow_schema(SIZES), False, ["_0"])
    with pytest.raises(ValueError, match="maxRecordsPerBatch='many', not an integer"):
        list(COMMAND_KINDS["grouped_map_arrow_iter"](SparkCommand(batch_sizes, SIZES), spec, iter([group])))


def totals_by_group(kind):
    """A function of each group for ``kind``, made here so that it travels by value."""

    def total_table(key, table):
        return pa.table({"s": [key[0].as_py()], "total": [sum(table.column("x").to_pylist())]})

    def total_batches(batches):
        batches = list(batches)
        total = sum(sum(batch.column("x").to_pylist()) for batch in batches)
        yield pa.RecordBatch.from_pydict({"s": [batches[0].column("s")[0].as_py()], "total": [total]})

    return total_table if kind == "grouped_map_arrow" else total_batches


TOTALS = StructType([StructField("s", StringType()), StructField("total", LongType())])


@pytest.mark.parametrize("kind", ["grouped_map_arrow", "grouped_map_arrow_iter"])
def test_the_client_groups_its_input_for_apply_in_arrow_commands(service, kind):
    table = pa.table({"s": ["a", "b", "a", "c", "b"], "x": pa.array([1, 2, 3, 4, 5], pa.int64())})
    client = executor.connect(service.uri, timeout=30)
    command = (totals_by_group(kind), TOTALS)
    results = list(
        client.map(command, table.to_batches(max_chunksize=2), kind=kind, group_by=["s"], schema=to_arrow_schema(TOTALS))
    )
    assert [batch.num_rows for batch in results] == [1, 1, 1], "one result batch per group"
    assert [row for batch in results for row in batch.to_pylist()] == [
        {"s": "a", "total": 4},
        {"s": "b", "total": 7},
        {"s": "c", "total": 4},
    ]


@pytest.mark.parametrize("kind", ["grouped_map_arrow", "grouped_map_arrow_iter"])
def test_the_client_refuses_apply_in_arrow_without_group_columns_or_a_command(service, kind):
    client = executor.connect(service.uri, timeout=30)
    table = pa.table({"s": ["a"], "x": pa.array([1], pa.int64())})
    function = totals_by_group(kind)
    with pytest.raises(ValueError, match=f"{kind} needs group_by columns"):
        client.map((function, TOTALS), table.to_batches(), kind=kind, schema=to_arrow_schema(TOTALS))
    with pytest.raises(executor.ProtocolError, match="PySpark UDF commands only"):
        list(client.map(function, table.to_batches(), kind=kind, group_by=["s"], schema=to_arrow_schema(TOTALS)))


def test_a_map_in_pandas_command_that_returns_no_iterator_fails_as_pyspark_does():
    frames_in = [spark_batch({LongType(): [1, 2]})]
    spec = StreamSpec("map_pandas", frames_in[0].schema, spark_schema(LongType()), False, [])
    as_list = SparkCommand(lambda frames: list(frames), StructType([StructField("_0", LongType())]))
    assert values(COMMAND_KINDS["map_pandas"](as_list, spec, iter(frames_in))) == [1, 2], "Spark 4.3's default"
    strict = [with_confs(frames_in[0], any_iterable="false")]
    strict_spec = StreamSpec("map_pandas", strict[0].schema, spec.output_schema, False, [])
    with pytest.raises(TypeError, match=r"UDF_RETURN_TYPE.*iterator of pandas.DataFrame, but is list.*acceptAnyIterable"):
        list(COMMAND_KINDS["map_pandas"](as_list, strict_spec, iter(strict)))
