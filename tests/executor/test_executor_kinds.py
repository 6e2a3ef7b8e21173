"""Every evaluation kind, through a real service, against the same function
run in plain Python; return types converted and checked as Spark does."""

from __future__ import annotations

import json

import pandas as pd
import pyarrow as pa
import pytest

import flightpickle.executor as executor
from sample_batches import batches, column

pytestmark = pytest.mark.timeout(120)

OFFSET = 7


def test_scalar_row_matches_plain_python_with_a_closure(service):
    def shout(x, s):
        return f"{s}:{x + OFFSET}"

    client = executor.connect(service.uri, timeout=30)
    results = list(client.map(shout, batches(), return_type=pa.string()))
    expected = [shout(x, s) for b in batches() for x, s in zip(b["x"].to_pylist(), b["s"].to_pylist())]
    assert column(results) == expected
    assert [b.num_rows for b in results] == [5, 5, 5]


def test_scalar_pandas_matches_plain_python(service):
    def scaled(x, s):
        return x * 2 + s.str.len()

    client = executor.connect(service.uri, timeout=30)
    results = list(client.map(scaled, batches(), kind="scalar_pandas", return_type=pa.int64()))
    expected = [v for b in batches() for v in scaled(b["x"].to_pandas(), b["s"].to_pandas()).tolist()]
    assert column(results) == expected


def test_map_arrow_matches_plain_python(service):
    def evens(iterator):
        for batch in iterator:
            keep = pa.array([v % 2 == 0 for v in batch["x"].to_pylist()])
            yield batch.filter(keep).select(["x"])

    schema = pa.schema([("x", pa.int64())])
    client = executor.connect(service.uri, timeout=30)
    results = list(client.map(evens, batches(), kind="map_arrow", schema=schema))
    assert column(results, "x") == [v for b in evens(iter(batches())) for v in b["x"].to_pylist()]


def test_map_pandas_may_change_the_number_of_batches_and_rows(service):
    def doubled_once(frames):
        everything = pd.concat(list(frames))
        yield pd.concat([everything, everything])[["s", "x"]]

    schema = pa.schema([("x", pa.int64()), ("s", pa.string())])
    client = executor.connect(service.uri, timeout=30)
    results = list(client.map(doubled_once, batches(), kind="map_pandas", schema=schema))
    assert len(results) == 1
    assert results[0].schema == schema
    assert column(results, "x") == list(range(15)) * 2


def test_grouped_map_pandas_gets_whole_groups_with_or_without_the_key(service):
    schema = pa.schema([("s", pa.string()), ("total", pa.int64())])

    def total(frame):
        return pd.DataFrame({"s": [frame["s"].iloc[0]], "total": [frame["x"].sum()]})

    def total_by_key(key, frame):
        return pd.DataFrame({"s": [key[0]], "total": [frame["x"].sum()]})

    client = executor.connect(service.uri, timeout=30)
    table = pa.Table.from_batches(batches()).to_pandas()
    expected = table.groupby("s")["x"].sum().to_dict()
    for func in (total, total_by_key):
        results = list(client.map(func, batches(), kind="grouped_map_pandas", group_by=["s"], schema=schema))
        assert dict(zip(column(results, "s"), column(results, "total"))) == expected


def test_grouped_map_pandas_passes_keys_and_takes_empty_results_as_spark_does(service):
    """Spark passes each key value as pandas gives it (a numpy scalar), and takes a wholly
    empty DataFrame (no rows, no columns) as no rows."""
    schema = pa.schema([("s", pa.string()), ("key_type", pa.string())])

    def key_types(key, frame):
        if key[0] == "b":
            return pd.DataFrame()
        return pd.DataFrame({"s": [key[0]], "key_type": [type(frame["x"].iloc[0]).__name__]})

    client = executor.connect(service.uri, timeout=30)
    table = pa.table({"s": ["a", "b", "a", "c"], "x": pa.array([1, 2, 3, 4], pa.int64())})
    results = list(client.map(key_types, table.to_batches(), kind="grouped_map_pandas", group_by=["s"], schema=schema))
    assert [b.num_rows for b in results] == [1, 0, 1], "one result per group, the empty one too"
    assert column(results, "s") == ["a", "c"]
    assert column(results, "key_type") == ["int64", "int64"]

    def numeric_key(key, frame):
        return pd.DataFrame({"s": [str(key)], "key_type": [type(key[0]).__name__]})

    results = list(client.map(numeric_key, table.to_batches(), kind="grouped_map_pandas", group_by=["x"], schema=schema))
    assert column(results, "key_type") == ["int64"] * 4


def test_results_are_converted_to_the_return_type(service):
    client = executor.connect(service.uri, timeout=30)
    results = list(client.map(lambda x, s: x, batches(1), return_type=pa.float64()))
    assert results[0].schema.field(0).type == pa.float64()
    assert column(results) == [0.0, 1.0, 2.0, 3.0, 4.0]


@pytest.mark.parametrize(
    ("kind", "func", "options", "message"),
    [
        ("scalar_row", lambda x, s: s, {"return_type": pa.int64()}, "cannot be converted to int64"),
        ("scalar_pandas", lambda x, s: x.head(2), {"return_type": pa.int64()}, "not the required length"),
        (
            "scalar_pandas",
            lambda x, s: pd.to_datetime(x, unit="s"),
            {"return_type": pa.int32()},
            r"returned Series \(Series of datetime64\[ns\]\) cannot be converted to int32",
        ),
        ("map_pandas", lambda it: (f[["x"]] for f in it), {"schema": pa.schema([("y", pa.int64())])}, "Missing: y"),
        ("map_arrow", lambda it: (f.to_pandas() for f in it), {"schema": pa.schema([("x", pa.int64())])}, "RecordBatch"),
    ],
)
def test_results_that_do_not_fit_fail_the_stream(service, kind, func, options, message):
    client = executor.connect(service.uri, timeout=30)
    with pytest.raises(executor.UdfError, match=message):
        list(client.map(func, batches(1), kind=kind, **options))


def test_row_errors_are_reported_in_the_right_rows(service):
    def picky(x, s):
        if x in (0, 2, 7):
            raise ValueError(f"no {x}")
        return x

    client = executor.connect(service.uri, timeout=30)
    results = list(client.map(picky, batches(2), return_type=pa.int64(), row_errors=True))
    assert column(results) == [None, 1, None, 3, 4, 5, 6, None, 8, 9]
    errors = column(results, "error")
    assert [i for i, e in enumerate(errors) if e] == [0, 2, 7]
    assert errors[7] == "ValueError: no 7"


def test_many_batches_with_a_small_window_come_back_in_order(start_service):
    service = start_service(1)
    client = executor.connect(service.uri, timeout=30, window=2)
    many = [pa.record_batch({"x": pa.array([i], pa.int64())}) for i in range(300)]
    results = list(client.map(lambda x: -x, many, return_type=pa.int64()))
    assert column(results) == [-i for i in range(300)]


def test_large_batches_cross_both_ways(service):
    rows = 500_000
    big = pa.record_batch({"x": pa.array(range(rows), pa.int64()), "s": pa.array(["abc"] * rows)})
    client = executor.connect(service.uri, timeout=60)
    results = list(client.map(lambda it: it, [big, big], kind="map_arrow", schema=big.schema))
    assert [r.equals(big) for r in results] == [True, True]


def test_an_empty_input_runs_nothing(service):
    client = executor.connect(service.uri, timeout=30)
    assert list(client.map(lambda x: x, [], return_type=pa.int64())) == []


def test_the_client_refuses_incomplete_requests(service):
    client = executor.connect(service.uri, timeout=30)
    with pytest.raises(ValueError, match="return_type"):
        client.map(lambda x: x, batches(1))
    with pytest.raises(ValueError, match="unknown kind"):
        client.map(lambda x: x, batches(1), kind="scalar_python")
    # grpc:// is the Flight front now (test_executor_flight.py); other schemes are refused.
    with pytest.raises(ValueError, match="unix://"):
        executor.connect("http://127.0.0.1:1")
    with pytest.raises(ValueError, match="for grpc://"):
        executor.connect("unix:///tmp/x.sock", token="t")


def test_abandoning_a_stream_frees_the_worker_for_the_next(service):
    client = executor.connect(service.uri, timeout=30, window=2)
    endless = (pa.record_batch({"x": pa.array([i], pa.int64())}) for i in range(10**9))
    results = client.map(lambda x: x, endless, return_type=pa.int64())
    assert next(results).column(0).to_pylist() == [0]
    results.close()
    # The single worker is free again: the next stream is served.
    assert column(client.map(lambda x, s: x + 1, batches(1), return_type=pa.int64())) == [1, 2, 3, 4, 5]


ANY_ITERABLE = "spark.sql.execution.pythonUDF.mapInBatch.legacy.acceptAnyIterable.enabled"


def strict_about_iterators(batches: list[pa.RecordBatch]) -> list[pa.RecordBatch]:
    """``batches`` under a session that turned Spark 4.3's leniency off (the Spark plugin sends its confs so)."""
    confs = {b"flightpickle.spark.conf": json.dumps({ANY_ITERABLE: "false"})}
    return [batch.replace_schema_metadata(confs) for batch in batches]


def test_map_arrow_takes_an_iterable_of_batches_unless_the_session_asks_for_an_iterator(service):
    schema = pa.schema([("x", pa.int64())])
    client = executor.connect(service.uri, timeout=30)

    def as_list(iterator):
        return [batch.select(["x"]) for batch in iterator]

    assert column(list(client.map(as_list, batches(), kind="map_arrow", schema=schema)), "x") == list(range(15))
    with pytest.raises(executor.UdfError) as refused:
        list(client.map(as_list, strict_about_iterators(batches()), kind="map_arrow", schema=schema))
    message = str(refused.value)
    assert "[UDF_RETURN_TYPE] Return type of the user-defined function should be iterator of pyarrow.RecordBatch, but is list" in message
    assert f"{ANY_ITERABLE}=false" in message


@pytest.mark.parametrize(
    "kind, returned, element",
    [("map_arrow", lambda batches: None, "pyarrow.RecordBatch"), ("map_pandas", lambda frames: 3, "pandas.DataFrame")],
)
def test_a_map_function_that_returns_no_iterable_fails_with_pysparks_error(service, kind, returned, element):
    client = executor.connect(service.uri, timeout=30)
    expected = f"should be iterator of {element}, but is {type(returned(None)).__name__}"
    with pytest.raises(executor.UdfError, match=rf"UDF_RETURN_TYPE.*{expected}"):
        list(client.map(returned, batches(), kind=kind, schema=pa.schema([("x", pa.int64())])))
