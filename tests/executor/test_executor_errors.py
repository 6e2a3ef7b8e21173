"""How streams fail: exceptions in the function, dead workers, malformed or
out-of-order messages, unknown digests, schema mismatches, oversized
messages, deadlines, and shutdown. None of them may hang."""

from __future__ import annotations

import os
import signal
import threading
import time

import pyarrow as pa
import pytest

import flightpickle.executor as executor
from flightpickle import _native, sealing
from raw_streams import ONE, RESULT, TIMEOUT, final_status, send_open
from raw_streams import connect as raw

pytestmark = pytest.mark.timeout(120)


def open_stream(conn, func=lambda x: x, envelope=None, digest=None, kind="scalar_row", output=RESULT):
    """Opens a stream of ``func`` by its digest alone unless an envelope is
    given; returns ``func`` sealed, for a ``Body`` the test may send."""
    sealed = sealing.seal(func)
    send_open(conn, digest=digest or sealing.read_header(sealed).digest, envelope=envelope, kind=kind, output_schema=output)
    return sealed


def test_an_exception_fails_the_stream_with_its_traceback(service):
    def divide(x):
        return x // 0

    client = executor.connect(service.uri, timeout=TIMEOUT)
    with pytest.raises(executor.UdfError) as failure:
        list(client.map(divide, [ONE], return_type=pa.int64()))
    assert "ZeroDivisionError" in failure.value.message
    assert "in divide" in failure.value.message
    # The worker is fine and serves the next stream.
    assert list(client.map(lambda x: x, [ONE], return_type=pa.int64()))[0].column(0).to_pylist() == [1, 2, 3]


def test_only_digest_is_sent_once_a_worker_has_the_function(service):
    def triple(x):
        return 3 * x

    for attempt in range(2):
        conn = raw(service)
        sealed = open_stream(conn, triple)
        reply = conn.recv(TIMEOUT)
        if attempt == 0:
            assert reply[0] == "need_body"
            conn.send_body(sealed, TIMEOUT)
            reply = conn.recv(TIMEOUT)
        assert reply[0] == "ready", reply
        conn.send_batch(0, ONE, TIMEOUT)
        conn.send_end(1, TIMEOUT)
        result = conn.recv(TIMEOUT)
        assert result[:2] == ("batch", 0) and result[2].column(0).to_pylist() == [3, 6, 9]
        # Batch 0 is acknowledged once its result is out and the end is asked for.
        assert conn.recv(TIMEOUT) == ("ack", 0)
        status = conn.recv(TIMEOUT)
        assert status[:3] == ("status", "ok", "")
        # Its stats: the first stream opened the function, the second found it by digest.
        assert status[3]["function_cached"] is (attempt == 1)
        assert status[3]["function_nanos"] > 0
        conn.close()


def test_an_unknown_digest_without_a_body_is_refused(service):
    conn = raw(service)
    open_stream(conn, lambda x: x + 12345)
    assert conn.recv(TIMEOUT)[0] == "need_body"
    conn.send_body(b"", TIMEOUT)
    assert final_status(conn)[0] == "unknown_digest"


def test_an_envelope_with_another_digest_is_refused(service):
    conn = raw(service)
    open_stream(conn, lambda x: x + 54321, envelope=sealing.seal(lambda x: x - 1), digest="0" * 64)
    code, message = final_status(conn)
    assert code == "protocol_error" and "digest" in message


def test_a_tampered_envelope_is_refused(service):
    sealed = bytearray(sealing.seal(lambda x: x + 777))
    sealed[-1] ^= 0xFF
    conn = raw(service)
    open_stream(conn, envelope=bytes(sealed), digest=sealing.read_header(bytes(sealed)).digest)
    code, message = final_status(conn)
    assert code == "protocol_error" and "refused" in message


@pytest.mark.parametrize(
    "garbage",
    [b"GARBAGE!" * 8, b"FPX1\x63" + b"\0" * 19, b"FPX1\x01\0\0\0\xff\xff\xff\xff" + b"\0" * 12, b"FPX1\x01\0\0\0\x03\0\0\0"],
    ids=["bad-magic", "unknown-kind", "oversized-metadata", "truncated-header"],
)
def test_malformed_frames_get_a_protocol_error(service, garbage):
    conn = raw(service)
    conn.send_raw(garbage, TIMEOUT)
    if len(garbage) < 24:  # a frame that never ends: the peer hangs up
        conn.close()
        return
    code, message = final_status(conn)
    assert code == "protocol_error", message


def test_a_truncated_frame_then_silence_ends_at_the_idle_deadline(start_service):
    service = start_service(1, "--idle-timeout", "0.5")
    conn = raw(service)
    conn.send_raw(b"FPX1\x01\0\0\0\x03\0\0\0", TIMEOUT)
    assert final_status(conn)[0] == "deadline"


def test_messages_out_of_order_get_a_protocol_error(service):
    conn = raw(service)
    conn.send_end(0, TIMEOUT)
    code, message = final_status(conn)
    assert code == "protocol_error" and "expected open, got end" in message

    conn = raw(service)
    sealed = open_stream(conn)
    if conn.recv(TIMEOUT)[0] == "need_body":
        conn.send_body(sealed, TIMEOUT)
        assert conn.recv(TIMEOUT)[0] == "ready"
    conn.send_batch(5, ONE, TIMEOUT)
    code, message = final_status(conn)
    assert code == "protocol_error" and "batch 5 arrived where 0 was due" in message


def test_a_batch_of_another_schema_gets_a_protocol_error(service):
    conn = raw(service)
    sealed = open_stream(conn)
    if conn.recv(TIMEOUT)[0] == "need_body":
        conn.send_body(sealed, TIMEOUT)
        assert conn.recv(TIMEOUT)[0] == "ready"
    other = pa.record_batch({"x": pa.array(["a"]), "y": pa.array([1.0])})
    conn.set_outgoing_schema(other.schema)
    conn.send_batch(0, other, TIMEOUT)
    code, message = final_status(conn)
    assert code == "protocol_error" and "field nodes" in message


def test_a_declaration_no_kind_can_satisfy_gets_a_protocol_error(service):
    conn = raw(service)
    open_stream(conn, output=pa.schema([("a", pa.int64()), ("b", pa.int64())]))
    code, message = final_status(conn)
    assert code == "protocol_error" and "1 column" in message


def test_an_oversized_batch_gets_a_protocol_error(start_service):
    service = start_service(1, "--max-message-bytes", "65536")
    client = executor.connect(service.uri, timeout=TIMEOUT)
    big = pa.record_batch({"x": pa.array(range(100_000), pa.int64())})
    with pytest.raises(executor.ProtocolError, match="exceeds the limit of 65536"):
        list(client.map(lambda x: x, [big], return_type=pa.int64()))


def test_an_idle_stream_ends_at_the_idle_deadline(start_service):
    service = start_service(1, "--idle-timeout", "0.5")
    first_result = threading.Event()

    def slow_input():
        yield ONE
        # Counted from the first result: on a loaded machine the worker may
        # take seconds to open the function and answer the first batch, and
        # a gap counted from the send could end before it waits again.
        first_result.wait(TIMEOUT)
        time.sleep(3)
        yield ONE

    client = executor.connect(service.uri, timeout=TIMEOUT)
    with pytest.raises(executor.DeadlineError, match="idle"):
        for _ in client.map(lambda x: x, slow_input(), return_type=pa.int64()):
            first_result.set()
    assert first_result.is_set()


def test_a_function_sent_after_the_idle_deadline_gets_the_deadline_status(start_service, monkeypatch):
    # The service gives up, sends its status and closes, so the late body
    # meets a broken pipe: the caller must still learn why, from the status.
    service = start_service(1, "--idle-timeout", "0.5")

    class LateBody:
        def __init__(self, conn):
            self.conn = conn

        def __getattr__(self, name):
            return getattr(self.conn, name)

        def send_body(self, envelope, timeout):
            time.sleep(1.5)
            self.conn.send_body(envelope, timeout)

    client = executor.connect(service.uri, timeout=TIMEOUT)
    connect = client._connect
    monkeypatch.setattr(client, "_connect", lambda: LateBody(connect()))
    with pytest.raises(executor.DeadlineError, match="idle"):
        list(client.map(lambda x: x, [ONE], return_type=pa.int64()))


def test_a_long_stream_ends_at_the_total_deadline(start_service):
    service = start_service(1, "--total-timeout", "1")

    def steady_input():
        for _ in range(40):
            time.sleep(0.1)
            yield ONE

    client = executor.connect(service.uri, timeout=TIMEOUT)
    with pytest.raises(executor.DeadlineError, match="total deadline"):
        list(client.map(lambda x: x, steady_input(), return_type=pa.int64()))


def test_a_dead_worker_fails_only_its_stream_and_is_replaced(start_service):
    service = start_service(2)
    client = executor.connect(service.uri, timeout=TIMEOUT)
    pid = lambda x: os.getpid()  # noqa: E731

    def slow_identity(x):
        time.sleep(0.05)
        return x

    survivor: dict = {}

    def run_survivor():
        many = [ONE] * 30
        survivor["result"] = list(client.map(slow_identity, many, return_type=pa.int64()))

    thread = threading.Thread(target=run_survivor)
    thread.start()
    time.sleep(0.5)  # the survivor's stream holds one worker; the next goes to the other
    with pytest.raises(executor.WorkerLostError):
        list(client.map(lambda x: os._exit(3), [ONE], return_type=pa.int64()))
    thread.join(TIMEOUT)
    assert len(survivor["result"]) == 30
    # The service replaced the dead worker: two distinct live workers answer.
    seen = set()
    deadline = time.monotonic() + TIMEOUT
    while len(seen) < 2 and time.monotonic() < deadline:
        seen.update(list(client.map(pid, [ONE], return_type=pa.int64()))[0].column(0).to_pylist())
    assert len(seen) == 2
    assert service.process.poll() is None


def test_shutdown_finishes_streams_in_flight(start_service):
    service = start_service(1)

    def slow_identity(x):
        time.sleep(0.1)
        return x

    client = executor.connect(service.uri, timeout=TIMEOUT)
    results = client.map(slow_identity, [ONE] * 20, return_type=pa.int64())
    first = next(results)
    service.process.send_signal(signal.SIGTERM)
    rest = list(results)
    assert 1 + len(rest) == 20 and first.num_rows == 3
    assert service.process.wait(TIMEOUT) == 0
    assert not service.path.exists()


def test_bad_arguments_exit_with_a_message(tmp_path):
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "flightpickle.executor", "serve", "--listen", "tcp://x"],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert done.returncode == 2 and "unix:///" in done.stderr


def test_a_second_service_on_a_live_socket_is_refused_and_leaves_it_alone(service):
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "flightpickle.executor", "serve", "--listen", service.uri],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert done.returncode == 2 and "already listens" in done.stderr
    client = executor.connect(service.uri, timeout=TIMEOUT)
    assert list(client.map(lambda x: x, [ONE], return_type=pa.int64()))[0].num_rows == 3
