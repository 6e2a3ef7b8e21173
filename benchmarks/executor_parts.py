"""Where a round trip on an open executor stream goes: ``python -m benchmarks.executor_parts``.

Splits the round trip that ``benchmarks.executor`` measures (one 1,000-row
int64 batch at a time, window 1) into its parts:

- in one process, through a pair of native connections: sending a batch
  (pyarrow to Rust, IPC encoding, the write), receiving one (the read, IPC
  decoding, the hand-off to pyarrow), an ack each way, and one step of each
  evaluation kind's Python with an identity function;
- across two processes: a plain socket echo of the same bytes, an echo through
  the native connections, the worker's own stream loop in a child forked from
  this process (the service's trip but for its worker being a process started
  on its own), and the service's round trip for each kind, with the CPU time
  each side's main thread spends per round trip, and how often the caller's
  thread and the worker give up the CPU (voluntary context switches) and the
  worker is preempted, which a busy machine blurs less than it blurs wall time.

Medians in microseconds. ``--quick`` runs fewer trips (too few for CPU time,
which the kernel counts in clock ticks).
"""

from __future__ import annotations

import argparse
import os
import resource
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa

from benchmarks.executor import open_window_of_one
from flightpickle import _native
from flightpickle.executor.kinds import KINDS, StreamSpec
from flightpickle.executor.launch import LocalService
from flightpickle.executor.settings import Settings
from flightpickle.executor.worker import Functions, serve_stream

TIMEOUT = 60.0
ROWS = 1000
WARM_UP = 50


def median_us(step, count: int) -> float:
    times = []
    for _ in range(count):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e6


def split_us(first, second, count: int) -> tuple[float, float]:
    """Medians of two steps that must run in turn."""
    firsts, seconds = [], []
    for _ in range(count):
        start = time.perf_counter()
        first()
        middle = time.perf_counter()
        second()
        firsts.append(middle - start)
        seconds.append(time.perf_counter() - middle)
    return statistics.median(firsts) * 1e6, statistics.median(seconds) * 1e6


def the_batch() -> pa.RecordBatch:
    return pa.record_batch({"x": pa.array(range(ROWS), pa.int64())})


def connection_pair(directory: Path):
    listener = _native.Listener.bind(str(directory / "pair.sock"), body_limit=1 << 30)
    ours = _native.Connection.connect(str(directory / "pair.sock"), timeout=TIMEOUT, body_limit=1 << 30)
    return listener, ours, listener.accept(TIMEOUT)


def in_process(count: int) -> dict[str, float]:
    batch = the_batch()
    results = {}
    with tempfile.TemporaryDirectory(prefix="fpx-", dir="/tmp") as directory:
        _, sender, receiver = connection_pair(Path(directory))
        sender.set_outgoing_schema(batch.schema)
        receiver.set_incoming_schema(batch.schema)
        send, receive = split_us(lambda: sender.send_batch(0, batch, TIMEOUT), lambda: receiver.recv(TIMEOUT), count)
        results["send_batch"], results["recv_batch"] = send, receive
        send, receive = split_us(lambda: sender.send_ack(0, TIMEOUT), lambda: receiver.recv(TIMEOUT), count)
        results["send_ack"], results["recv_ack"] = send, receive
    output = pa.schema([("result", pa.int64())])
    for kind, func, schema in (
        ("scalar_pandas", identity_column, output),
        ("scalar_row", identity_value, output),
        ("map_arrow", identity_batches, batch.schema),
    ):
        spec = StreamSpec(kind, batch.schema, schema, False, [])
        results[f"{kind}_step"] = median_us(lambda: next(KINDS[kind](func, spec, iter([batch]))), count)
    return results


def identity_column(x):
    return x


def identity_value(x):
    return x


def identity_batches(batches):
    return batches


def socket_echo(count: int) -> float:
    """A plain Python echo of a batch's bytes through a socket pair to a second process."""
    size = 64 + 8 * ROWS + 200  # about the frame of a 1,000-row int64 batch
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    child = os.fork()
    if child == 0:
        ours.close()
        buffer = bytearray(size)
        while _receive_exactly(theirs, buffer):
            theirs.sendall(buffer)
        os._exit(0)
    theirs.close()
    payload, sink = bytes(size), bytearray(size)

    def trip():
        ours.sendall(payload)
        _receive_exactly(ours, sink)

    result = median_us(trip, count + WARM_UP)
    ours.close()
    os.waitpid(child, 0)
    return result


def _receive_exactly(sock: socket.socket, buffer: bytearray) -> bool:
    view, got = memoryview(buffer), 0
    while got < len(buffer):
        n = sock.recv_into(view[got:])
        if n == 0:
            return False
        got += n
    return True


def connection_echo(count: int) -> float:
    """The same through the native connections: the second process receives
    each batch and sends it back, as a worker would with no function at all."""
    batch = the_batch()
    with tempfile.TemporaryDirectory(prefix="fpx-", dir="/tmp") as directory:
        listener = _native.Listener.bind(f"{directory}/echo.sock", body_limit=1 << 30)
        child = os.fork()
        if child == 0:
            conn = listener.accept(TIMEOUT)
            conn.set_incoming_schema(batch.schema)
            conn.set_outgoing_schema(batch.schema)
            while (message := conn.recv(TIMEOUT))[0] == "batch":
                conn.send_batch(message[1], message[2], TIMEOUT)
            os._exit(0)
        conn = _native.Connection.connect(f"{directory}/echo.sock", timeout=TIMEOUT, body_limit=1 << 30)
        conn.set_outgoing_schema(batch.schema)
        conn.set_incoming_schema(batch.schema)

        def trip():
            conn.send_batch(0, batch, TIMEOUT)
            conn.recv(TIMEOUT)

        result = median_us(trip, count + WARM_UP)
        conn.send_end(0, TIMEOUT)
        os.waitpid(child, 0)
        conn.close()
    return result


def forked_worker_trips(count: int) -> dict[str, float]:
    """``map_arrow`` round trips through the worker's own stream loop
    (``serve_stream``) in a child forked from this process: the service's
    trip but for its worker being a process started on its own. Also how
    often per trip the child gave up the CPU (blocked) and was preempted."""
    batch = the_batch()
    with tempfile.TemporaryDirectory(prefix="fpx-", dir="/tmp") as directory:
        listener = _native.Listener.bind(f"{directory}/worker.sock", body_limit=1 << 30)
        child = os.fork()
        if child == 0:
            serve_stream(listener.accept(TIMEOUT), Functions(), Settings())
            os._exit(0)
        conn = _native.Connection.connect(f"{directory}/worker.sock", timeout=TIMEOUT, body_limit=1 << 30)
        open_window_of_one(conn, identity_batches, "map_arrow", batch.schema, batch.schema)
        times, before = timed_trips(conn, batch, count, lambda: context_switches(child))
        blocked, preempted = (after - first for after, first in zip(context_switches(child), before))
        conn.send_end(count + WARM_UP, TIMEOUT)
        while conn.recv(TIMEOUT)[0] != "status":
            pass
        conn.close()
        os.waitpid(child, 0)
    return {"p50": statistics.median(times) * 1e6, "blocks": blocked / count, "preempted": preempted / count}


def timed_trips(conn, batch, count: int, when_warm):
    """Seconds per round trip of ``batch`` on ``conn`` (window 1) for ``count``
    trips after the warm-up, and what ``when_warm()`` read as they began."""
    times = []
    for seq in range(count + WARM_UP):
        if seq == WARM_UP:
            at_warm = when_warm()
        start = time.perf_counter()
        conn.send_batch(seq, batch, TIMEOUT)
        while conn.recv(TIMEOUT)[0] != "batch":
            pass
        times.append(time.perf_counter() - start)
    return times[WARM_UP:], at_warm


def context_switches(pid: int) -> tuple[int, int]:
    """Voluntary (blocked) and involuntary (preempted) context switches of a process's main thread."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/task/{pid}/status").read_text().splitlines())
    return int(fields["voluntary_ctxt_switches"]), int(fields["nonvoluntary_ctxt_switches"])


def cpu_seconds(pid: int) -> float:
    """CPU time of the process's main thread (not of the threads numpy's
    libraries keep, which have nothing to do with the stream)."""
    fields = Path(f"/proc/{pid}/task/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def worker_pid(service: LocalService) -> int:
    pid = service.process.pid
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    if len(children) != 1:
        raise RuntimeError(f"expected one worker, found {children}")
    return int(children[0])


def service_trips(service: LocalService, kind: str, func, count: int) -> dict[str, float]:
    """Round trips on one open stream with window 1, as benchmarks.executor measures them."""
    batch = the_batch()
    output = pa.schema([("result", pa.int64())]) if kind.startswith("scalar") else batch.schema
    conn = _native.Connection.connect(str(service.path), timeout=TIMEOUT, body_limit=1 << 30)
    open_window_of_one(conn, func, kind, batch.schema, output)
    worker = worker_pid(service)
    times, (ours, theirs, switches) = timed_trips(
        conn,
        batch,
        count,
        lambda: (resource.getrusage(resource.RUSAGE_THREAD), cpu_seconds(worker), context_switches(worker)),
    )
    after = resource.getrusage(resource.RUSAGE_THREAD)
    worker_cpu = cpu_seconds(worker) - theirs
    worker_blocks, worker_preempted = (now - then for now, then in zip(context_switches(worker), switches))
    conn.send_end(count + WARM_UP, TIMEOUT)
    while conn.recv(TIMEOUT)[0] != "status":
        pass
    conn.close()
    return {
        "p50": statistics.median(times) * 1e6,
        "caller_cpu": (after.ru_utime + after.ru_stime - ours.ru_utime - ours.ru_stime) / count * 1e6,
        "worker_cpu": worker_cpu / count * 1e6,
        "caller_blocks": (after.ru_nvcsw - ours.ru_nvcsw) / count,
        "worker_blocks": worker_blocks / count,
        "worker_preempted": worker_preempted / count,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.executor_parts", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    count = 200 if args.quick else 3000
    print("in one process (median us)")
    for name, value in in_process(count).items():
        print(f"  {name:38} {value:8.1f}")
    print("across two processes (median us per round trip)")
    print(f"  {'plain socket echo':38} {socket_echo(count):8.1f}")
    print(f"  {'native connection echo':38} {connection_echo(count):8.1f}")
    forked = forked_worker_trips(count)
    print(
        f"  {'worker loop in a forked child, map_arrow':38} {forked['p50']:8.1f}   worker blocks"
        f" {forked['blocks']:.2f}, preempted {forked['preempted']:.2f} times"
    )
    with LocalService(1) as service:
        for kind, func in (
            ("scalar_pandas", identity_column),
            ("map_arrow", identity_batches),
            ("scalar_row", identity_value),
        ):
            trips = service_trips(service, kind, func, count)
            print(
                f"  {'service, ' + kind:38} {trips['p50']:8.1f}   CPU per trip: caller {trips['caller_cpu']:.1f},"
                f" worker {trips['worker_cpu']:.1f}; caller blocks {trips['caller_blocks']:.2f} times;"
                f" worker blocks {trips['worker_blocks']:.2f}, preempted {trips['worker_preempted']:.2f} times"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
