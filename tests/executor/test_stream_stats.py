"""What the service measures of each stream and reports with its final
status: the time its worker spent in the function, and whether the worker
had the function by digest or opened it. Over a Unix socket (the status's
body) and over Flight (a Stats message the client asks for)."""

from __future__ import annotations

import subprocess

import pandas as pd
import pyarrow as pa
import pytest

import flightpickle.executor as executor
from flightpickle import _native
from raw_streams import ONE, TIMEOUT, connect, open_ready, send_open
from sample_batches import batches

pytestmark = pytest.mark.timeout(120)


def drained(stream):
    """Reads a stream to its end and returns it, for its stats."""
    for _ in stream:
        pass
    return stream


def test_the_first_stream_opens_the_function_and_the_next_finds_it(service):
    def plus_one(x, s):
        return x + 1

    client = executor.connect(service.uri, timeout=TIMEOUT)
    first = drained(client.map(plus_one, batches(), return_type=pa.int64()))
    second = drained(client.map(plus_one, batches(), return_type=pa.int64()))
    assert first.stats.function_cached is False
    assert second.stats.function_cached is True
    assert first.stats.function_nanos > 0 and second.stats.function_nanos > 0


@pytest.mark.parametrize(
    ("kind", "func", "options"),
    [
        ("scalar_pandas", lambda x, s: x * 2, {"return_type": pa.int64()}),
        ("map_arrow", lambda batches: (b.select(["x"]) for b in batches), {"schema": pa.schema([("x", pa.int64())])}),
        ("map_pandas", lambda frames: (f[["x"]] for f in frames), {"schema": pa.schema([("x", pa.int64())])}),
        (
            "grouped_map_pandas",
            lambda frame: frame[["x"]],
            {"schema": pa.schema([("x", pa.int64())]), "group_by": ["s"]},
        ),
    ],
)
def test_every_kind_reports_time_in_the_function(service, kind, func, options):
    client = executor.connect(service.uri, timeout=TIMEOUT)
    stream = drained(client.map(func, batches(), kind=kind, **options))
    assert stream.stats is not None and stream.stats.function_nanos > 0


def test_a_failing_function_still_reports_its_stats(service):
    conn = open_ready(service, lambda x: x // 0)
    conn.send_batch(0, ONE, TIMEOUT)
    # No End: the service ends the stream with its status at the failing batch and may close
    # the connection before an End could be written (that End then fails with a broken pipe).
    status = conn.recv(TIMEOUT)
    assert status[:2] == ("status", "udf_error") and "ZeroDivisionError" in status[2]
    assert status[3]["function_cached"] is False and status[3]["function_nanos"] > 0
    conn.close()


def test_a_stream_refused_before_its_function_is_known_reports_none(service):
    conn = connect(service)
    send_open(conn, digest="0" * 64)
    assert conn.recv(TIMEOUT)[0] == "need_body"
    conn.send_body(b"", TIMEOUT)
    status = conn.recv(TIMEOUT)
    assert status[:2] == ("status", "unknown_digest") and status[3] is None
    conn.close()


def test_a_status_may_carry_stats_or_not(tmp_path):
    """The binding's two ends: stats go out in the status body and come back as a dict."""
    listener = _native.Listener.bind(str(tmp_path / "s.sock"), body_limit=1 << 20)
    sender = _native.Connection.connect(str(tmp_path / "s.sock"), timeout=TIMEOUT, body_limit=1 << 20)
    receiver = listener.accept(TIMEOUT)
    receiver.send_status("ok", "", TIMEOUT, function_nanos=123, function_cached=True)
    receiver.send_status("udf_error", "boom", TIMEOUT)
    assert sender.recv(TIMEOUT) == ("status", "ok", "", {"function_nanos": 123, "function_cached": True})
    assert sender.recv(TIMEOUT) == ("status", "udf_error", "boom", None)
    with pytest.raises(ValueError, match="go together"):
        receiver.send_status("ok", "", TIMEOUT, function_nanos=1)


def test_flight_calls_get_the_stats_too():
    def by_group(frame):
        return pd.DataFrame({"n": [len(frame)]})

    schema = pa.schema([("n", pa.int64())])
    with executor.launch.LocalService(2, listen="grpc://127.0.0.1:0", stderr=subprocess.DEVNULL) as service:
        client = executor.connect(service.uri, timeout=TIMEOUT)
        streams = [
            drained(client.map(by_group, batches(), kind="grouped_map_pandas", group_by=["s"], schema=schema))
            for _ in range(3)
        ]
    assert all(stream.stats.function_nanos > 0 for stream in streams)
    assert streams[0].stats.function_cached is False
    # Three streams on two workers: one worker served two, the second from its cache.
    assert any(stream.stats.function_cached for stream in streams[1:])
