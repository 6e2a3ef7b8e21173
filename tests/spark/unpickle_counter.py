"""A payload that counts, per worker process, how often it is unpickled.

Tests ship this module by value: the counter then lives in ``sys`` (which every
copy of the module shares in a worker process), and a UDF made by ``probe``
reports its worker's pid, the count so far and the payload's size as its result.
"""

from __future__ import annotations

import os
import sys

UNPICKLE_COUNTER = "_flightpickle_test_unpickles"


def count_unpickle(data):
    """Rebuilds the captured payload, counting rebuilds in this worker process."""
    counts = sys.__dict__.setdefault(UNPICKLE_COUNTER, [0])
    counts[0] += 1
    return data


class CountedPayload:
    """Bytes that count how often a worker process unpickles them."""

    def __init__(self, data):
        self.data = data

    def __reduce__(self):
        return count_unpickle, (self.data,)


def probe(payload: CountedPayload):
    """A UDF body capturing ``payload``; on executors it is the rebuilt bytes themselves."""

    def report(_):
        return f"{os.getpid()}:{sys.__dict__[UNPICKLE_COUNTER][0]}:{len(payload)}"

    return report


def unpickles_per_worker(reports: list[str], size: int) -> dict[str, int]:
    """The number of unpickles each worker process had made by its last report."""
    per_worker: dict[str, int] = {}
    for report in reports:
        pid, count, seen_size = report.split(":")
        assert int(seen_size) == size, f"worker {pid} saw {seen_size} bytes, not {size}"
        per_worker[pid] = max(per_worker.get(pid, 0), int(count))
    return per_worker
