"""The pandas conversions of the evaluation kinds: the short roads taken for
numbers and booleans give exactly what pyarrow's general conversions give."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from flightpickle.executor.kinds import column_to_pandas, conform_columns, converted, to_arrow

COLUMNS = [
    pa.array([1, 2, 3], pa.int64()),
    pa.array([1, None, 3], pa.int64()),
    pa.array([None, None], pa.int32()),
    pa.array([-128, 127], pa.int8()),
    pa.array([2**64 - 1, 0], pa.uint64()),
    pa.array([2**63 + 5, None], pa.uint64()),
    pa.array([1.5, None, float("nan")], pa.float64()),
    pa.array([1.5, 2.5], pa.float32()),
    pa.array(np.array([0.5, np.nan], dtype=np.float16)),
    pa.array([True, False]),
    pa.array([True, None]),
    pa.array([], pa.int64()),
    pa.array(range(10), pa.int64()).slice(3, 4),
    # Not numbers: these take pyarrow's own road.
    pa.array(["a", None]),
    pa.array([1, None], pa.date32()),
    pa.array([0, None], pa.timestamp("us", tz="UTC")),
    pa.array([[1], None], pa.list_(pa.int64())),
]


@pytest.mark.parametrize("column", COLUMNS, ids=lambda c: f"{c.type}-{c.null_count}-nulls")
def test_a_column_becomes_the_series_pyarrow_makes(column):
    ours, theirs = column_to_pandas(column), column.to_pandas()
    assert type(ours) is type(theirs)
    assert ours.dtype == theirs.dtype
    assert ours.index.equals(theirs.index)
    assert ours.name == theirs.name
    pd.testing.assert_series_equal(ours, theirs)
    assert ours.values.flags.writeable == theirs.values.flags.writeable


SERIES = [
    pd.Series([1, 2, 3]),
    pd.Series([1, 2, 3], index=[7, 8, 9], name="renamed"),
    pd.Series([1.0, np.nan, 3.5]),
    pd.Series([1.5, 2.0]),
    pd.Series([2**40, -1]),
    pd.Series([255, 0], dtype=np.uint8),
    pd.Series([2**64 - 1], dtype=np.uint64),
    pd.Series([True, False]),
    pd.Series([], dtype=np.int64),
    # Not numpy numbers: converted as they are.
    pd.Series([1, None], dtype="Int64"),
    pd.Series(["a", None]),
    pd.Series(pd.to_datetime(["2024-01-01", None])),
    np.array([1, 2, 3]),
]
TYPES = [pa.int64(), pa.int32(), pa.int8(), pa.uint64(), pa.float64(), pa.float32(), pa.bool_(), pa.string()]


@pytest.mark.parametrize("values", SERIES, ids=lambda v: f"{type(v).__name__}-{v.dtype}")
@pytest.mark.parametrize("data_type", TYPES, ids=str)
def test_results_convert_as_pyarrow_converts_the_series(values, data_type):
    expected = outcome(lambda: pa.Array.from_pandas(values, type=data_type))
    converted = outcome(lambda: to_arrow(values, data_type, "the results"))
    if isinstance(expected, pa.Array):
        assert isinstance(converted, pa.Array)
        assert converted.type == expected.type
        assert converted.equals(expected)
    else:
        assert isinstance(converted, Exception) and str(expected) in str(converted)


def outcome(convert):
    """What ``convert`` returns, or the exception it raises."""
    try:
        return convert()
    except Exception as error:  # noqa: BLE001 - compared, not handled
        return error


# Results of every sort that pyarrow refuses, each with the error type pyarrow
# raises for it: all must reach the caller as the same conversion error.
UNFIT = {
    "datetimes-as-int32": (pd.Series(pd.to_datetime(["2024-01-01"])), pa.int32(), pa.ArrowNotImplementedError),
    "floats-as-dates": (pd.Series([1.5]), pa.date32(), pa.ArrowNotImplementedError),
    "ints-as-lists": (pd.Series([1, 2]), pa.list_(pa.int64()), pa.ArrowNotImplementedError),
    "ints-as-structs": (pd.Series([1, 2]), pa.struct([("a", pa.int64())]), pa.ArrowTypeError),
    "strings-as-ints": (pd.Series(["a"]), pa.int64(), pa.ArrowInvalid),
    "too-big-ints": (pd.Series([2**70]), pa.int64(), OverflowError),
    "a-list-of-ints-as-lists": ([1, None], pa.list_(pa.int64()), pa.ArrowTypeError),
    "a-list-of-mixed-as-ints": (["a", 1], pa.int64(), pa.ArrowInvalid),
}
RETURNED = {
    "datetimes-as-int32": "Series of datetime64[ns]",
    "floats-as-dates": "Series of float64",
    "ints-as-lists": "Series of int64",
    "ints-as-structs": "Series of int64",
    "strings-as-ints": "Series of object",
    "too-big-ints": "Series of object",
    "a-list-of-ints-as-lists": "list of int",
    "a-list-of-mixed-as-ints": "list of int, str",
}


@pytest.mark.parametrize("case", UNFIT)
def test_every_conversion_failure_is_the_same_clear_error(case):
    values, data_type, raised = UNFIT[case]
    with pytest.raises(TypeError) as failure:
        to_arrow(values, data_type, "the returned Series")
    message = str(failure.value)
    assert type(failure.value) is TypeError
    assert message.startswith(f"the returned Series ({RETURNED[case]}) cannot be converted to {data_type}: ")
    assert message.endswith(f"Return values of {data_type}, or declare the type that is returned.")
    assert isinstance(failure.value.__cause__, raised)


@pytest.mark.parametrize(
    ("column", "data_type", "raised"),
    [
        (pa.array([1, 2]), pa.struct([("a", pa.int64())]), pa.ArrowNotImplementedError),
        (pa.array([[1]]), pa.int64(), pa.ArrowNotImplementedError),
        (pa.array(["x"]), pa.int64(), pa.ArrowInvalid),
    ],
    ids=["int64-as-struct", "list-as-int64", "string-as-int64"],
)
def test_arrow_columns_that_cannot_be_cast_fail_the_same_way(column, data_type, raised):
    schema = pa.schema([("y", data_type)])
    with pytest.raises(TypeError) as failure:
        conform_columns({"y": column}, [column], schema, "the returned RecordBatch")
    assert str(failure.value).startswith(
        f"column 'y' of the returned RecordBatch (Arrow {column.type}) cannot be converted to {data_type}: "
    )
    assert isinstance(failure.value.__cause__, raised)


def test_running_out_of_memory_is_not_called_a_conversion_failure():
    def exhausted():
        raise pa.ArrowMemoryError("malloc of 1 GiB failed")

    with pytest.raises(pa.ArrowMemoryError):
        converted(exhausted, [1], pa.int64(), "the function's results")


def test_a_pandas_udf_sees_a_fresh_default_index_in_every_batch_and_argument():
    # Spark makes every argument's Series anew for each batch: a function that
    # names one's index names no other argument's, nor the next batch's.
    # (Reusing row indexes between Series would save nothing: pandas spends
    # as much taking an index as making a RangeIndex, 105k instructions either way.)
    from flightpickle.executor.kinds import KINDS, StreamSpec

    batch = pa.record_batch({"a": pa.array([1, 2, 3], pa.int64()), "b": pa.array([0.5, 1.5, 2.5])})
    shorter = batch.slice(0, 2)
    seen = []

    def renames_its_first_index(a, b):
        seen.append((type(a.index), a.index.name, b.index.name, len(a.index), a.index.equals(pd.RangeIndex(len(a)))))
        a.index.name = "renamed"
        return a

    spec = StreamSpec("scalar_pandas", batch.schema, pa.schema([("result", pa.int64())]), False, [])
    results = list(KINDS["scalar_pandas"](renames_its_first_index, spec, iter([batch, batch, shorter, batch])))
    assert [r.column(0).to_pylist() for r in results] == [[1, 2, 3], [1, 2, 3], [1, 2], [1, 2, 3]]
    assert seen == [(pd.RangeIndex, None, None, n, True) for n in (3, 3, 2, 3)]
