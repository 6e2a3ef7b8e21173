"""The small int64 + string batches the executor tests feed through functions."""

from __future__ import annotations

import pyarrow as pa


def batches(count=3, rows=5):
    return [
        pa.record_batch(
            {
                "x": pa.array([i * rows + j for j in range(rows)], pa.int64()),
                "s": pa.array([f"k{(i + j) % 2}" for j in range(rows)]),
            }
        )
        for i in range(count)
    ]


def column(results, name="result"):
    return [value for batch in results for value in batch.column(name).to_pylist()]
