"""The service's Arrow Flight front: every evaluation kind over DoExchange
against plain Python, a plain ``pyarrow.flight`` client following
PROTOCOL.md by hand, digest-only reuse, the bearer token, TLS, and how
calls fail (an exception's traceback, a worker killed mid-stream, a
malformed first message). Everything on loopback, bounded in time."""

from __future__ import annotations

import os
import signal
import struct
import subprocess
import threading
import time

import pandas as pd
import pyarrow as pa
import pyarrow.flight as flight
import pytest

import flightpickle.executor as executor
from raw_streams import by_hand_open, meta
from sample_batches import batches, column

pytestmark = pytest.mark.timeout(120)

TIMEOUT = 30.0
LOOPBACK = "grpc://127.0.0.1:0"
ONE = pa.record_batch({"x": pa.array([1, 2, 3], pa.int64())})


@pytest.fixture(scope="module")
def service():
    """One two-worker Flight service shared by the module's tests."""
    with executor.launch.LocalService(2, listen=LOOPBACK, stderr=subprocess.DEVNULL) as running:
        yield running


def plain_rows(func):
    return [func(x, s) for b in batches() for x, s in zip(b["x"].to_pylist(), b["s"].to_pylist())]


def test_the_service_says_where_it_listens(service):
    assert service.uri.startswith("grpc://127.0.0.1:") and not service.uri.endswith(":0")


def test_scalar_kinds_match_plain_python(service):
    client = executor.connect(service.uri, timeout=TIMEOUT)

    def shout(x, s):
        return f"{s}:{x + 7}"

    assert column(client.map(shout, batches(), return_type=pa.string())) == plain_rows(shout)

    def scaled(x, s):
        return x * 2 + s.str.len()

    results = list(client.map(scaled, batches(), kind="scalar_pandas", return_type=pa.int64()))
    assert column(results) == [v for b in batches() for v in scaled(b["x"].to_pandas(), b["s"].to_pandas())]


def test_iterator_kinds_match_plain_python(service):
    client = executor.connect(service.uri, timeout=TIMEOUT)

    def evens(iterator):
        for batch in iterator:
            yield batch.filter(pa.array([v % 2 == 0 for v in batch["x"].to_pylist()])).select(["x"])

    schema = pa.schema([("x", pa.int64())])
    results = list(client.map(evens, batches(), kind="map_arrow", schema=schema))
    assert column(results, "x") == column(evens(iter(batches())), "x")

    def doubled(frames):
        for frame in frames:
            yield frame.assign(x=frame["x"] * 2)[["x", "s"]]

    schema = pa.schema([("x", pa.int64()), ("s", pa.string())])
    results = list(client.map(doubled, batches(), kind="map_pandas", schema=schema))
    assert column(results, "x") == [2 * v for v in range(15)]


def test_grouped_map_matches_plain_python(service):
    schema = pa.schema([("s", pa.string()), ("total", pa.int64())])

    def total(key, frame):
        return pd.DataFrame({"s": [key[0]], "total": [frame["x"].sum()]})

    client = executor.connect(service.uri, timeout=TIMEOUT)
    results = list(client.map(total, batches(), kind="grouped_map_pandas", group_by=["s"], schema=schema))
    expected = pa.Table.from_batches(batches()).to_pandas().groupby("s")["x"].sum().to_dict()
    assert dict(zip(column(results, "s"), column(results, "total"))) == expected


def test_row_errors_and_many_batches_through_a_small_window(service):
    client = executor.connect(service.uri, timeout=TIMEOUT, window=2)
    many = [pa.record_batch({"x": pa.array([i, 0], pa.int64())}) for i in range(1, 41)]
    results = list(client.map(lambda x: 100 // x, many, return_type=pa.int64(), row_errors=True))
    assert column(results) == [v for i in range(1, 41) for v in (100 // i, None)]
    assert all("ZeroDivisionError" in error for error in column(results, "error")[1::2])


def test_large_batches_cross_both_ways(service):
    big = pa.record_batch({"x": pa.array(range(1_000_000), pa.int64()), "s": pa.array(["v" * 8] * 1_000_000)})
    client = executor.connect(service.uri, timeout=TIMEOUT)
    results = list(client.map(lambda batches: batches, [big], kind="map_arrow", schema=big.schema))
    assert pa.Table.from_batches(results).equals(pa.Table.from_batches([big]))


def test_an_exception_fails_the_call_with_its_traceback(service):
    def divide(x):
        return x // 0

    client = executor.connect(service.uri, timeout=TIMEOUT)
    with pytest.raises(executor.UdfError) as failure:
        list(client.map(divide, [ONE], return_type=pa.int64()))
    assert "ZeroDivisionError" in failure.value.message and "in divide" in failure.value.message
    assert column(client.map(lambda x: x + 1, [ONE], return_type=pa.int64())) == [2, 3, 4]


@pytest.mark.parametrize(
    ("status", "error_class"),
    [("udf_error", executor.UdfError), ("protocol_error", executor.ProtocolError), ("deadline", executor.DeadlineError)],
)
def test_a_call_that_ends_without_its_status_message_still_gets_the_status_error(status, error_class):
    # gRPC may hand the client the call's end without the Status message the
    # front sent just before it; the gRPC status carries the same name and text.
    from flightpickle.executor.flight_connection import translate

    grpc_error = flight.FlightServerError(
        f"Flight RPC failed with message: {status}: Traceback\nZeroDivisionError: boom\n"
        f". gRPC client debug context: UNKNOWN:{status}. Client context: OK"
    )
    error = translate(grpc_error, False)
    assert type(error) is error_class
    assert error.message == "Traceback\nZeroDivisionError: boom"


def test_a_grpc_failure_not_from_the_front_keeps_the_generic_translation():
    from flightpickle.executor.flight_connection import translate

    assert type(translate(flight.FlightServerError("Flight RPC failed with message: socket closed"), False)) is (
        executor.ExecutorError
    )
    assert type(translate(flight.FlightServerError("Flight RPC failed with message: udf_error: late"), True)) is (
        executor.DeadlineError
    )


# A plain pyarrow.flight client, written from PROTOCOL.md alone (its Open: raw_streams).


def run_by_hand(uri, func, *, expect_body, body_follows=False):
    """One stream by hand; returns the result column and whether NeedBody came."""
    sealed, descriptor = by_hand_open(func, pa.schema([("result", pa.int64())]), body_follows=body_follows)
    client = flight.connect(uri)
    writer, reader = client.do_exchange(descriptor)
    writer.begin(ONE.schema)
    if body_follows:
        writer.write_metadata(b"\x03" + sealed)
    reply = meta(reader.read_chunk())
    asked = reply == b"\x02"
    if asked:
        writer.write_metadata(b"\x03" + sealed)
        reply = meta(reader.read_chunk())
    assert reply == b"\x04" and asked == expect_body
    writer.write_with_metadata(ONE, b"\x05" + struct.pack("<Q", 0))
    writer.write_metadata(b"\x07" + struct.pack("<Q", 1))
    writer.done_writing()
    results, acks = [], []
    while True:
        chunk = reader.read_chunk()
        tag = meta(chunk)[0]
        if tag == 5:
            assert struct.unpack("<Q", meta(chunk)[1:]) == (len(results),)
            results.append(chunk.data)
        elif tag == 6:
            acks.append(struct.unpack("<Q", meta(chunk)[1:])[0])
        else:
            assert meta(chunk) == b"\x08\x00"  # status ok, no message
            break
    assert acks == [0]
    writer.close()
    client.close()
    return column(results)


def test_a_plain_pyarrow_flight_client_follows_the_protocol_by_hand():
    # A one-worker service of its own, so that the second call meets the same worker.
    with executor.launch.LocalService(1, listen=LOOPBACK, stderr=subprocess.DEVNULL) as service:

        def by_hand_triple(x):
            return 3 * x

        assert run_by_hand(service.uri, by_hand_triple, expect_body=True) == [3, 6, 9]
        # The worker keeps the function: the digest alone is enough the second time.
        assert run_by_hand(service.uri, by_hand_triple, expect_body=False) == [3, 6, 9]


def test_a_function_sent_with_the_opening_is_not_asked_for():
    with executor.launch.LocalService(1, listen=LOOPBACK, stderr=subprocess.DEVNULL) as service:

        def by_hand_quadruple(x):
            return 4 * x

        # A fresh worker, which would otherwise answer NeedBody.
        assert run_by_hand(service.uri, by_hand_quadruple, expect_body=False, body_follows=True) == [4, 8, 12]
        # The Python client sends a function with its first opening, then its digest.
        client = executor.connect(service.uri, timeout=TIMEOUT)

        def quintuple(x):
            return 5 * x

        for _ in range(2):
            assert column(client.map(quintuple, [ONE], return_type=pa.int64())) == [5, 10, 15]
        assert len(client.sent) == 1


def test_a_promised_body_that_does_not_come_is_refused(service):
    _, descriptor = by_hand_open(lambda x: x, pa.schema([("result", pa.int64())]), body_follows=True)
    writer, reader = flight.connect(service.uri).do_exchange(descriptor)
    with pytest.raises(pa.ArrowInvalid, match="body_follows"):
        writer.begin(ONE.schema)
        writer.write_metadata(b"\x07" + struct.pack("<Q", 0))
        reader.read_chunk()


def test_a_malformed_first_message_is_refused_without_a_worker(service):
    client = flight.connect(service.uri)
    bad = [
        (flight.FlightDescriptor.for_command(b"{not json"), "not a JSON open document"),
        (flight.FlightDescriptor.for_path("f"), "must be a command"),
        (by_hand_open(lambda x: x, ONE.schema, kind="nope")[1], "unknown kind"),
    ]
    for descriptor, reason in bad:
        writer, reader = client.do_exchange(descriptor)
        # The refusal may already meet the schema being sent.
        with pytest.raises(pa.ArrowInvalid, match=reason):
            writer.begin(ONE.schema)
            reader.read_chunk()
        with pytest.raises(pa.ArrowInvalid):
            writer.close()  # the call's status, once more
    client.close()


def test_a_call_that_sends_nothing_ends_at_the_idle_deadline(start_service):
    service = start_service(1, "--idle-timeout", "1", listen=LOOPBACK)
    client = flight.connect(service.uri)
    _, descriptor = by_hand_open(lambda x: x, ONE.schema)
    writer, reader = client.do_exchange(descriptor)  # no first message follows
    with pytest.raises(flight.FlightTimedOutError, match="no first message"):
        reader.read_chunk()
    client.close()


def test_a_worker_killed_mid_stream_fails_only_its_call(service):
    client = executor.connect(service.uri, timeout=TIMEOUT)

    def die_at_the_third_batch(x):
        if x[0] == 3:
            os.kill(os.getpid(), signal.SIGKILL)
        return x

    many = [pa.record_batch({"x": pa.array([i], pa.int64())}) for i in range(10)]
    results = []
    with pytest.raises(executor.WorkerLostError):
        for batch in client.map(die_at_the_third_batch, many, kind="scalar_pandas", return_type=pa.int64()):
            results.append(batch)
    assert column(results) == [0, 1, 2]
    assert service.process.poll() is None
    assert column(client.map(lambda x: x * 2, [ONE], return_type=pa.int64())) == [2, 4, 6]


def test_the_token_is_required_and_checked(start_service, tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text("s3cret\n")
    service = start_service(1, "--token-file", str(token_file), listen=LOOPBACK)
    for wrong in (None, "guess"):
        with pytest.raises(executor.UnauthenticatedError):
            list(executor.connect(service.uri, timeout=TIMEOUT, token=wrong).map(lambda x: x, [ONE], return_type=pa.int64()))
    client = executor.connect(service.uri, timeout=TIMEOUT, token="s3cret")
    assert column(client.map(lambda x: x - 1, [ONE], return_type=pa.int64())) == [0, 1, 2]


def test_the_token_may_come_from_the_environment(start_service):
    env = dict(os.environ, FLIGHTPICKLE_EXECUTOR_TOKEN="from-env")
    service = start_service(1, listen=LOOPBACK, env=env)
    with pytest.raises(executor.UnauthenticatedError):
        list(executor.connect(service.uri, timeout=TIMEOUT).map(lambda x: x, [ONE], return_type=pa.int64()))
    client = executor.connect(service.uri, timeout=TIMEOUT, token="from-env")
    assert column(client.map(lambda x: x, [ONE], return_type=pa.int64())) == [1, 2, 3]


def self_signed(tmp_path):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return cert, key


def test_tls_serves_callers_that_trust_the_certificate(start_service, tmp_path):
    cert, key = self_signed(tmp_path)
    options = ("--tls-cert", str(cert), "--tls-key", str(key))
    service = start_service(1, *options, listen="grpc+tls://127.0.0.1:0")
    assert service.uri.startswith("grpc+tls://127.0.0.1:")
    client = executor.connect(service.uri, timeout=TIMEOUT, tls_root_certs=cert.read_bytes())
    assert column(client.map(lambda x: x + 2, [ONE], return_type=pa.int64())) == [3, 4, 5]
    # A caller speaking plain gRPC to it gets an error, not a hang.
    plain = executor.connect(service.uri.replace("grpc+tls", "grpc"), timeout=5)
    with pytest.raises(executor.ExecutorError):
        list(plain.map(lambda x: x, [ONE], return_type=pa.int64()))


def test_a_host_name_is_served_and_called_by_name(start_service):
    service = start_service(1, listen="grpc://localhost:0")
    assert service.uri.startswith("grpc://localhost:")
    client = executor.connect(service.uri, timeout=TIMEOUT)
    assert column(client.map(lambda x: x + 2, [ONE], return_type=pa.int64())) == [3, 4, 5]


def test_bad_flight_options_exit_with_a_message(tmp_path):
    cases = [
        (["--listen", "grpc+tls://127.0.0.1:0"], "needs --tls-cert"),
        (["--listen", "grpc://no-such-host.invalid:1"], 'cannot listen on "no-such-host.invalid"'),
        (["--listen", "grpc://127.0.0.1"], "expected grpc://host:port"),
        (["--listen", f"unix://{tmp_path}/s", "--token-file", __file__], "are for grpc://"),
        (["--listen", "grpc://127.0.0.1:0", "--tls-cert", __file__], "go together"),
    ]
    for arguments, message in cases:
        done = subprocess.run(
            [executor.launch.sys.executable, "-m", "flightpickle.executor", "serve", *arguments],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert done.returncode == 2 and message in done.stderr, (arguments, done.stderr)


def test_shutdown_finishes_calls_in_flight(start_service):
    service = start_service(1, listen=LOOPBACK)

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
    # New calls are refused once it is gone, quickly and clearly.
    with pytest.raises(executor.UnavailableError):
        list(executor.connect(service.uri, timeout=5).map(lambda x: x, [ONE], return_type=pa.int64()))


def test_concurrent_calls_share_the_workers(service):
    client = executor.connect(service.uri, timeout=TIMEOUT)
    outcomes = {}

    def run(n):
        outcomes[n] = column(client.map(lambda x: x * n, [ONE] * 5, return_type=pa.int64()))

    threads = [threading.Thread(target=run, args=(n,)) for n in range(1, 5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(TIMEOUT)
    assert outcomes == {n: [n, 2 * n, 3 * n] * 5 for n in range(1, 5)}


def grow_to(rows):
    def grown(iterator):
        for _ in iterator:
            yield pa.record_batch({"x": pa.array(range(rows), pa.int64())})

    return grown


def test_the_body_limit_bounds_the_replies_a_client_accepts(service):
    # body_limit 0 leaves the 2 MiB a message's header may take: a 4 MB
    # reply is over it, a 1.6 MB one within it.
    strict = executor.connect(service.uri, timeout=TIMEOUT, body_limit=0)
    with pytest.raises(executor.WorkerLostError, match="body_limit of 0 bytes"):
        list(strict.map(grow_to(500_000), [ONE], kind="map_arrow", schema=ONE.schema))
    assert [b.num_rows for b in strict.map(grow_to(200_000), [ONE], kind="map_arrow", schema=ONE.schema)] == [200_000]
    roomy = executor.connect(service.uri, timeout=TIMEOUT, body_limit=8 << 20)
    assert [b.num_rows for b in roomy.map(grow_to(500_000), [ONE], kind="map_arrow", schema=ONE.schema)] == [500_000]


@pytest.mark.parametrize("uri", ["grpc://127.0.0.1:1", "unix:///nonexistent/executor.sock"])
def test_a_negative_body_limit_is_refused(uri):
    with pytest.raises(ValueError, match="body_limit is a number of bytes"):
        executor.connect(uri, body_limit=-1)
