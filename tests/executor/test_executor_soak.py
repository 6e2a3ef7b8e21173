"""A soak: several concurrent streams for a minute (FLIGHTPICKLE_SOAK_SECONDS),
and the service's memory (supervisor and workers) stays flat once warm."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pyarrow as pa
import pytest

import flightpickle.executor as executor

SOAK_SECONDS = float(os.environ.get("FLIGHTPICKLE_SOAK_SECONDS", "60"))
STREAMS = 4
pytestmark = pytest.mark.timeout(SOAK_SECONDS + 180)


def resident_bytes(pid: int) -> int:
    """VmRSS of ``pid`` and of its children (the workers)."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    total = 0
    for each in [pid, *map(int, children)]:
        for line in Path(f"/proc/{each}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1]) * 1024
    return total


def test_memory_stays_flat_under_concurrent_streams(start_service):
    service = start_service(2)
    client = executor.connect(service.uri, timeout=60)
    batch = pa.record_batch(
        {"x": pa.array(range(20_000), pa.int64()), "s": pa.array([f"row {i}" for i in range(20_000)])}
    )
    schema = pa.schema([("x", pa.int64())])
    stop = threading.Event()
    failures: list[BaseException] = []
    counts = [0] * STREAMS

    def keep_streaming(index: int):
        kinds = [
            lambda: client.map(lambda it: (b.select(["x"]) for b in it), [batch] * 20, kind="map_arrow", schema=schema),
            lambda: client.map(lambda x, s: x * 2, [batch] * 20, kind="scalar_pandas", return_type=pa.int64()),
        ]
        try:
            while not stop.is_set():
                for result in kinds[index % 2]():
                    assert result.num_rows == batch.num_rows
                counts[index] += 1
        except BaseException as failure:  # reported by the test thread
            failures.append(failure)

    threads = [threading.Thread(target=keep_streaming, args=(i,)) for i in range(STREAMS)]
    for thread in threads:
        thread.start()
    time.sleep(SOAK_SECONDS / 4)
    warm = resident_bytes(service.process.pid)
    time.sleep(SOAK_SECONDS * 3 / 4)
    end = resident_bytes(service.process.pid)
    stop.set()
    for thread in threads:
        thread.join(120)
    assert not failures, failures
    assert all(count > 0 for count in counts)
    # Flat: allocator noise only, nothing that grows with the streams served.
    assert end - warm < max(0.1 * warm, 32 << 20), (warm, end, counts)
