"""A caller that hangs up while its stream's function runs: the function
gets --cancel-grace seconds, then its worker exits and a fresh one takes
its place, so that the service keeps serving; a function that returns in
time keeps its worker."""

from __future__ import annotations

import os
import socket
import struct
import subprocess
import sys
import time

import pyarrow as pa
import pyarrow.flight as flight
import pytest

import flightpickle.executor as executor
from flightpickle.executor.launch import LocalService
from raw_streams import ONE, RESULT, TIMEOUT, by_hand_open, meta, open_ready

pytestmark = pytest.mark.timeout(120)


def worker_pid(service) -> int:
    """The pid of the worker that serves the next stream (the service has one)."""
    client = executor.connect(service.uri, timeout=TIMEOUT)
    result = list(client.map(lambda x: x * 0 + os.getpid(), [ONE], return_type=pa.int64()))
    return result[0].column(0)[0].as_py()


def start_and_hang_up(service, func, started_file) -> int:
    """Starts a stream of ``func`` (which writes its worker's pid to
    ``started_file`` first), hangs up once it runs, and returns that pid."""
    conn = open_ready(service, func)
    conn.send_batch(0, ONE, TIMEOUT)
    deadline = time.monotonic() + TIMEOUT
    while not started_file.exists() or not started_file.read_text():
        assert time.monotonic() < deadline, "the function never started"
        time.sleep(0.02)
    conn.close()
    return int(started_file.read_text())


def sleeper(started_file, seconds):
    path = str(started_file)

    def run_for_a_while(x):
        with open(path, "w") as out:
            out.write(str(os.getpid()))
        time.sleep(seconds)
        return x

    return run_for_a_while


@pytest.fixture
def service_log(tmp_path):
    """Starts services whose stderr goes to a file; yields ``start(*options)``."""
    started = []

    def start(*options, **launch):
        log = open(tmp_path / f"service{len(started)}.log", "w")
        service = LocalService(1, *options, stderr=log, **launch)
        started.append((service, log))
        return service, tmp_path / f"service{len(started) - 1}.log"

    yield start
    for service, log in started:
        service.stop()
        log.close()


def test_a_function_that_runs_on_after_its_caller_left_loses_its_worker(service_log, tmp_path):
    service, log = service_log("--cancel-grace", "0.5")
    started = tmp_path / "started"
    # Far longer than the client's timeout: without the watch, the service's
    # only worker would be busy with it when the next stream comes.
    hung_pid = start_and_hang_up(service, sleeper(started, 600), started)
    begun = time.monotonic()
    next_pid = worker_pid(service)
    assert next_pid != hung_pid
    assert time.monotonic() - begun < TIMEOUT
    said = log.read_text()
    assert f"worker {hung_pid}: the caller of a stream hung up" in said
    assert f"worker {hung_pid} exited with 3; starting another" in said


def test_a_flight_caller_that_cancels_its_call_frees_the_worker_too(service_log, tmp_path):
    # The Flight front closes the worker's stream when a call is cancelled
    # (PROTOCOL.md), and the worker takes that for a hang-up as over a socket.
    service, log = service_log("--cancel-grace", "0.5", listen="grpc://127.0.0.1:0")
    started = tmp_path / "started"
    sealed, descriptor = by_hand_open(sleeper(started, 600), RESULT, body_follows=True)
    client = flight.connect(service.uri)
    writer, reader = client.do_exchange(descriptor)
    writer.begin(ONE.schema)
    writer.write_metadata(b"\x03" + sealed)
    assert meta(reader.read_chunk()) == b"\x04"  # Ready
    writer.write_with_metadata(ONE, b"\x05" + struct.pack("<Q", 0))
    deadline = time.monotonic() + TIMEOUT
    while not started.exists() or not started.read_text():
        assert time.monotonic() < deadline, "the function never started"
        time.sleep(0.02)
    hung_pid = int(started.read_text())
    reader.cancel()
    client.close()
    begun = time.monotonic()
    assert worker_pid(service) != hung_pid
    assert time.monotonic() - begun < TIMEOUT
    said = log.read_text()
    assert f"worker {hung_pid}: the caller of a stream hung up" in said
    assert f"worker {hung_pid} exited with 3; starting another" in said


def test_a_function_that_returns_within_the_grace_keeps_its_worker(service_log, tmp_path):
    service, log = service_log("--cancel-grace", "60")
    started = tmp_path / "started"
    hung_pid = start_and_hang_up(service, sleeper(started, 1.0), started)
    assert worker_pid(service) == hung_pid
    assert "hung up" not in log.read_text()


def test_streams_that_end_as_usual_keep_their_worker(service_log):
    service, log = service_log("--cancel-grace", "0")
    first = worker_pid(service)
    # The caller closes right after each status: a hang-up after the end.
    assert [worker_pid(service) for _ in range(5)] == [first] * 5
    client = executor.connect(service.uri, timeout=TIMEOUT)
    with pytest.raises(executor.UdfError):
        list(client.map(lambda x: x // 0, [ONE], return_type=pa.int64()))
    assert worker_pid(service) == first
    assert "hung up" not in log.read_text()


def test_a_half_close_after_the_end_is_not_a_hang_up(service_log, tmp_path):
    # Callers may half-close after End (PROTOCOL.md); with no grace at all,
    # taking that for a hang-up would end the worker mid-function.
    service, log = service_log("--cancel-grace", "0")
    first = worker_pid(service)
    conn = open_ready(service, sleeper(tmp_path / "started", 1.0))
    conn.send_batch(0, ONE.slice(0, 1), TIMEOUT)
    conn.send_end(1, TIMEOUT)
    with socket.socket(fileno=os.dup(conn.fileno())) as same_socket:
        same_socket.shutdown(socket.SHUT_WR)
    messages = []
    while not messages or messages[-1][0] != "status":
        messages.append(conn.recv(TIMEOUT))
    assert messages[-1][1:3] == ("ok", "")
    assert [m[2].column(0).to_pylist() for m in messages if m[0] == "batch"] == [[1]]
    conn.close()
    assert worker_pid(service) == first
    assert "hung up" not in log.read_text()


@pytest.mark.parametrize("grace", ["-1", "nan", "soon"])
def test_a_bad_grace_is_refused_with_a_message(grace):
    done = subprocess.run(
        [sys.executable, "-m", "flightpickle.executor", "serve", "--listen", "unix:///tmp/unused.sock",
         "--cancel-grace", grace],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert done.returncode == 2 and "--cancel-grace" in done.stderr
