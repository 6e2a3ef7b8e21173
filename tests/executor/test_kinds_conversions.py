"""The pandas conversions of the evaluation kinds: the short roads taken for
numbers and booleans give exactly what pyarrow's general conversions give."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from flightpickle.executor.kinds import column_to_pandas, to_arrow

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
