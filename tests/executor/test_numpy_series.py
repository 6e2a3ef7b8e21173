"""The cheaper road to a Series over a numpy array must make exactly the
Series ``pandas.Series(values)`` makes, or not be taken."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from flightpickle.executor import numpy_series
from flightpickle.executor.numpy_series import series_of

ARRAYS = {
    **{f"{dtype}": np.arange(5).astype(dtype) for dtype in sorted(map(str, numpy_series.FAST_DTYPES))},
    "read-only": np.frombuffer(np.arange(4, dtype=np.int64).tobytes(), dtype=np.int64),
    "strided": np.arange(10, dtype=np.int64)[::3],
    "empty": np.array([], dtype=np.float64),
    "nan": np.array([1.0, np.nan]),
    "float16": np.array([0.5, np.nan], dtype=np.float16),
    "objects": np.array([True, None], dtype=object),
    "datetimes": np.array(["2024-01-01"], dtype="datetime64[ns]"),
}


def assert_same_series(ours, theirs, values):
    assert type(ours) is type(theirs)
    assert sorted(vars(ours)) == sorted(vars(theirs))
    pd.testing.assert_series_equal(ours, theirs, check_index_type=True, check_flags=True)
    assert type(ours.index) is type(theirs.index)
    assert ours.name is None and theirs.name is None
    assert ours.to_numpy().flags.writeable == theirs.to_numpy().flags.writeable
    assert np.shares_memory(ours.to_numpy(), values) == np.shares_memory(theirs.to_numpy(), values)


@pytest.mark.parametrize("name", ARRAYS)
def test_a_series_of_an_array_is_the_one_pandas_makes(name):
    values = ARRAYS[name]
    assert_same_series(series_of(values), pd.Series(values), values)


def test_this_pandas_takes_the_cheaper_road_for_numbers():
    # Else the road above is never tested: a pandas it does not fit takes the public one.
    assert numpy_series._road(), f"pandas {pd.__version__}: the private road was refused"


@pytest.mark.parametrize("mode", [True, "warn"])
def test_copy_on_write_takes_the_public_road(mode):
    values = np.arange(4, dtype=np.int64)
    with pd.option_context("mode.copy_on_write", mode):
        ours, theirs = series_of(values), pd.Series(values)
        assert_same_series(ours, theirs, values)
