"""A pandas UDF as a notebook would define it: it names the pandas module
and captures a numpy array. Apart from the other subjects, so that counting
instructions of the small cases need not import pandas under valgrind."""

import numpy as np
import pandas as pd

SCALE = 2.5


def make_pandas_udf(megabytes=1):
    weights = np.linspace(0.0, 1.0, megabytes * 131072)  # 8 bytes each

    def weighted(values: pd.Series) -> pd.Series:
        return values * float(weights[: len(values)].mean()) + SCALE

    return weighted


pandas_udf = make_pandas_udf()
