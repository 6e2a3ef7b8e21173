"""PyPI arrow-udf's Python Flight server as the rival of the row-wise measure.

arrow-udf 0.3.2 requires pyarrow<26 and this project pins pyarrow 26, so the
rival gets a venv of its own (``benchmarks/.arrow-udf-venv``, made once from
``requirements-arrow-udf.txt`` and reused while that file is unchanged). Flight
is a wire protocol: this process's pyarrow 26 client calls the rival's server,
which runs under pyarrow 25, over loopback TCP.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.flight as flight

HERE = Path(__file__).resolve().parent
REQUIREMENTS = HERE / "requirements-arrow-udf.txt"
SERVER_SCRIPT = HERE / "arrow_udf_server.py"
VENV = HERE / ".arrow-udf-venv"
#: The requirements the venv was made from, written once its install succeeded.
STAMP = VENV / "flightpickle-requirements.txt"
FUNCTION = "plus_one"
INSTALL_TIMEOUT = 900.0
START_TIMEOUT = 60.0
STOP_TIMEOUT = 10.0


def rival_python() -> Path:
    """The rival venv's interpreter, making the venv first when it is missing or stale."""
    python = VENV / "bin" / "python"
    wanted = REQUIREMENTS.read_text()
    if python.exists() and STAMP.exists() and STAMP.read_text() == wanted:
        return python
    # venv run from inside a venv builds on the base interpreter, not on this venv.
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(VENV)], check=True, timeout=INSTALL_TIMEOUT)
    install = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-r", str(REQUIREMENTS)]
    subprocess.run(install, check=True, timeout=INSTALL_TIMEOUT)
    STAMP.write_text(wanted)
    return python


def _read_port(log: Path, server: subprocess.Popen, deadline: float) -> int:
    """The port the server prints on its ``port N`` line, or an error once it dies or the deadline passes."""
    while time.monotonic() < deadline:
        for line in log.read_text().splitlines():
            if line.startswith("port "):
                return int(line.split()[1])
        if server.poll() is not None:
            raise RuntimeError(f"arrow-udf server exited with {server.returncode}:\n{log.read_text()}")
        time.sleep(0.05)
    raise TimeoutError(f"arrow-udf server printed no port within {START_TIMEOUT} s:\n{log.read_text()}")


def _wait_until_it_answers(client: flight.FlightClient, deadline: float) -> None:
    """Asks for the function's schema until the server gives it (input then result fields)."""
    while True:
        remaining = deadline - time.monotonic()
        try:
            options = flight.FlightCallOptions(timeout=max(0.5, min(5.0, remaining)))
            info = client.get_flight_info(flight.FlightDescriptor.for_path(FUNCTION), options)
        except flight.FlightError:
            if remaining <= 0:
                raise
            time.sleep(0.1)
            continue
        if info.schema.types != [pa.int64(), pa.int64()]:
            raise RuntimeError(f"arrow-udf serves {FUNCTION} as {info.schema}, expected int64 -> int64")
        return


def _stop(server: subprocess.Popen) -> None:
    """SIGTERM (the server shuts down on it), then a kill if it does not go in time."""
    if server.poll() is None:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(STOP_TIMEOUT)


@contextmanager
def running_server():
    """A Flight client connected to a running arrow-udf server serving ``x + 1``; the server stops on exit."""
    python = rival_python()
    with tempfile.TemporaryDirectory(prefix="arrow-udf-") as directory:
        log = Path(directory) / "server.log"
        with log.open("w") as out:
            # -u: its prints reach the log as they happen, the port line first of all.
            server = subprocess.Popen([str(python), "-u", str(SERVER_SCRIPT)], stdout=out, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + START_TIMEOUT
            port = _read_port(log, server, deadline)
            client = flight.FlightClient(f"grpc://127.0.0.1:{port}")
            try:
                _wait_until_it_answers(client, deadline)
                yield client
            finally:
                client.close()
        finally:
            _stop(server)


def exchange(client: flight.FlightClient, batches: list[pa.RecordBatch], timeout: float) -> list[pa.RecordBatch]:
    """All ``batches`` through one DoExchange call, results in order.

    A thread writes while this one reads: writing everything first would stall
    once the unread results fill the HTTP/2 window and the server stops reading."""
    options = flight.FlightCallOptions(timeout=timeout)
    writer, reader = client.do_exchange(flight.FlightDescriptor.for_path(FUNCTION), options)
    failure = []

    def send():
        try:
            writer.begin(batches[0].schema)
            for batch in batches:
                writer.write_batch(batch)
            writer.done_writing()
        except Exception as error:  # reported by the reading thread
            failure.append(error)

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    try:
        results = [reader.read_chunk().data for _ in batches]
    finally:
        sender.join(timeout)
    if failure:
        raise failure[0]
    writer.close()
    return results


def check_plus_one(batches: list[pa.RecordBatch], results: list[pa.RecordBatch]) -> None:
    """Each result is its input's column plus one, row for row."""
    if len(results) != len(batches):
        raise AssertionError(f"arrow-udf returned {len(results)} batches for {len(batches)}")
    for given, got in zip(batches, results):
        expected = pc.add(given.column(0), 1)
        if got.num_columns != 1 or not got.column(0).equals(expected):
            raise AssertionError(f"arrow-udf returned a wrong result: {got.schema} {got.column(0)[:5]}")


def row_wise_rows_per_second(batch: pa.RecordBatch, count: int, timeout: float) -> float:
    """Rows/s of arrow-udf's ``x + 1`` over ``count`` copies of ``batch`` on one stream, after a warm-up batch."""
    with running_server() as client:
        check_plus_one([batch], exchange(client, [batch], timeout))
        batches = [batch] * count
        start = time.perf_counter()
        results = exchange(client, batches, timeout)
        elapsed = time.perf_counter() - start
        check_plus_one(batches, results)
    return batch.num_rows * count / elapsed


if __name__ == "__main__":
    # Makes the venv and runs a small exchange: a check that the rival works here.
    sample = pa.record_batch({"x": pa.array(range(1000), pa.int64())})
    print(f"arrow-udf x + 1: {row_wise_rows_per_second(sample, 10, 60.0):,.0f} rows/s")
