"""A pandas Series over a numpy array of numbers, made for half of what
``pandas.Series(values)`` costs.

For a 1,000-value int64 array the public constructor spends about 105k
instructions, most of them finding out what it was given (option lookups,
type checks, name validation). pandas makes its own Series from a block
manager (``Series._from_mgr``) in about 53k, and for a plain numpy array of
numbers with the default index and no name the object is the same: same
block, index, name, flags and attributes. That road is private to pandas,
so it is taken only where it was checked to give the same object: pandas 2,
the block manager, copy-on-write off (on, the public constructor copies the
array, which the private road would not), and the dtypes below. Anything
else takes the public road.
"""

from __future__ import annotations

import numpy as np

#: dtypes the private road is checked for: numpy's own numbers and booleans.
#: Object arrays (booleans with nulls) are inferred by the public road, and
#: float16 is left to it as well.
FAST_DTYPES = frozenset(
    np.dtype(name)
    for name in ("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "float32", "float64", "bool")
)

_private_road = None  # decided on first use: a function, or False


def series_of(values: np.ndarray):
    """``pandas.Series(values)`` for a one-dimensional numpy array."""
    import pandas as pd

    road = _road()
    if road and values.ndim == 1 and values.dtype in FAST_DTYPES and _plain_settings():
        return road(values)
    return pd.Series(values)


def _road():
    global _private_road
    if _private_road is None:
        _private_road = _checked_private_road() or False
    return _private_road


def _checked_private_road():
    """The private road if this pandas has it and it makes the very Series
    the public constructor makes; else None."""
    import pandas as pd

    if not pd.__version__.startswith("2."):
        return None
    try:
        from pandas.core.internals import SingleBlockManager

        from_mgr = pd.Series._from_mgr

        def make(values):
            index = pd.RangeIndex(len(values))
            series = from_mgr(SingleBlockManager.from_array(values, index), axes=[index])
            object.__setattr__(series, "_name", None)
            return series

        sample = np.arange(3, dtype=np.int64)
        ours, theirs = make(sample), pd.Series(sample)
        same = (
            type(ours) is type(theirs)
            and sorted(vars(ours)) == sorted(vars(theirs))
            and ours.equals(theirs)
            and ours.index.equals(theirs.index)
            and type(ours.index) is type(theirs.index)
            and ours.name is None
            and ours.flags == theirs.flags
            and np.shares_memory(ours.to_numpy(), sample) == np.shares_memory(theirs.to_numpy(), sample)
        )
    except Exception:  # noqa: BLE001 - any surprise means: use the public road
        return None
    return make if same else None


def _plain_settings() -> bool:
    """Whether pandas runs as checked: block manager, copy-on-write off.
    Read from pandas's option table itself: ``get_option`` costs more than
    the road saves."""
    from pandas._config.config import _global_config

    mode = _global_config["mode"]
    return mode["copy_on_write"] is False and mode["data_manager"] == "block"
