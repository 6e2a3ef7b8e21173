"""The client keeps at most ``window`` batches unacknowledged: checked against
a stand-in service that takes batches but acknowledges only when told."""

from __future__ import annotations

import tempfile
import threading
from pathlib import Path

import pyarrow as pa
import pytest

import flightpickle.executor as executor
from flightpickle import _native

pytestmark = pytest.mark.timeout(60)
WINDOW = 3
QUIET = 0.5  # seconds without a batch: the client is waiting for credit


def batches_until_quiet(conn) -> list[int]:
    seqs = []
    while True:
        try:
            message = conn.recv(QUIET)
        except _native.TransportError as error:
            assert error.args[0] == "timeout"
            return seqs
        assert message[0] == "batch"
        seqs.append(message[1])


def test_the_client_waits_for_acks_beyond_its_window():
    path = Path(tempfile.mkdtemp(prefix="fpx-", dir="/tmp")) / "standin.sock"
    listener = _native.Listener.bind(str(path), body_limit=1 << 20)
    client = executor.connect(f"unix://{path}", timeout=30, window=WINDOW)
    endless = (pa.record_batch({"x": pa.array([i], pa.int64())}) for i in range(10**9))
    outcome = {}

    def consume():
        try:
            list(client.map(lambda x: x, endless, return_type=pa.int64()))
        except executor.UnavailableError as error:
            outcome["error"] = error

    consumer = threading.Thread(target=consume)
    consumer.start()
    conn = listener.accept(30.0)
    message = conn.recv(30)
    assert message[0] == "open" and message[1]["window"] == WINDOW
    conn.set_incoming_schema(message[1]["input_schema"])
    conn.send_ready(30)

    assert batches_until_quiet(conn) == [0, 1, 2]
    conn.send_ack(0, 30)
    conn.send_ack(1, 30)
    assert batches_until_quiet(conn) == [3, 4]

    conn.send_status("unavailable", "stand-in closes", 30)
    conn.close()
    consumer.join(30)
    assert "stand-in closes" in str(outcome["error"])
    path.unlink()
    path.parent.rmdir()
