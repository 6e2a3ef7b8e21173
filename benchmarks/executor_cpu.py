"""CPU time per batch of the throughput measure, by process and thread:
``python -m benchmarks.executor_cpu``.

Runs the identity ``map_arrow`` stream of ``benchmarks.executor`` (65,536-row
int64 + string batches through a one-worker service) and, around it, reads
each thread's run time from ``/proc/<pid>/task/<tid>/schedstat`` (nanoseconds)
and its user and system split from ``.../stat`` (clock ticks) in the calling
process, the service's main process and its worker. On a shared machine CPU
time per batch moves far less than wall time does, so it is the figure to
compare between builds. The raw echo is measured the same way (its two
processes), for the same bytes in the same chunks.
"""

from __future__ import annotations

import argparse
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks.executor import SERVICE_SEND_BUFFER, batch_bytes, executor_copy, sample_batch, start_echo
from flightpickle.executor.launch import LocalService

TICK_NANOS = 1e9 / os.sysconf("SC_CLK_TCK")


@dataclass
class ThreadTimes:
    run_nanos: int
    user_nanos: float
    system_nanos: float


def thread_times(pid: int) -> dict[tuple[int, str], ThreadTimes]:
    """Run, user and system time of each live thread of ``pid``, by (tid, name)."""
    times = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            run = int((task / "schedstat").read_text().split()[0])
            stat = (task / "stat").read_text()
            name = (task / "comm").read_text().strip()
        except OSError:
            continue  # the thread ended between the listing and the read
        fields = stat[stat.rindex(")") + 2 :].split()
        times[(int(task.name), name)] = ThreadTimes(run, int(fields[11]) * TICK_NANOS, int(fields[12]) * TICK_NANOS)
    return times


def process_times(pid: int) -> ThreadTimes:
    """User and system time of all of ``pid``'s threads, those that ended
    included (their run time is not kept, so ``run_nanos`` is their sum)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    user, system = int(fields[11]) * TICK_NANOS, int(fields[12]) * TICK_NANOS
    return ThreadTimes(int(user + system), user, system)


def snapshot(pid: int) -> dict:
    return {"threads": thread_times(pid), "process": process_times(pid)}


def children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(child) for child in (task / "children").read_text().split()]
    return found


def per_batch(label: str, before: dict, after: dict, batches: int) -> None:
    """Prints each live thread's CPU per batch over the interval (threads
    that started inside it count from zero), then the whole process's, in
    which threads that ended inside it (the caller's sender) count too."""
    for key, end in sorted(after["threads"].items()):
        start = before["threads"].get(key, ThreadTimes(0, 0.0, 0.0))
        show(label, key[1], start, end, batches)
    show(label, "whole process (ticks)", before["process"], after["process"], batches)


def show(label: str, what: str, start: ThreadTimes, end: ThreadTimes, batches: int) -> None:
    run = (end.run_nanos - start.run_nanos) / batches / 1e3
    if run >= 1:
        user = (end.user_nanos - start.user_nanos) / batches / 1e3
        system = (end.system_nanos - start.system_nanos) / batches / 1e3
        print(f"  {label:8} {what:28} {run:8.0f} us/batch (user {user:6.0f}, system {system:6.0f})")


def executor_cpu(batch, count: int) -> None:
    with LocalService(1) as service:
        pids = {"caller": os.getpid(), "service": service.process.pid}
        executor_copy(service.uri, batch, 2)  # the worker opens the function and warms up
        pids["worker"] = children(service.process.pid)[0]
        before = {name: snapshot(pid) for name, pid in pids.items()}
        started = time.perf_counter()
        executor_copy(service.uri, batch, count)
        elapsed = time.perf_counter() - started
        after = {name: snapshot(pid) for name, pid in pids.items()}
    print(f"executor, identity map_arrow: {elapsed / count * 1e6:.0f} us/batch wall clock")
    for name in pids:
        per_batch(name, before[name], after[name], count)


def raw_echo_cpu(batch, count: int, send_buffer: int | None) -> None:
    """The raw echo of ``benchmarks.executor``, with its echo process's CPU."""
    chunk = batch_bytes(batch)
    ours, child = start_echo(send_buffer)
    payload = memoryview(os.urandom(chunk))
    sink = bytearray(1 << 20)
    before = {"caller": snapshot(os.getpid()), "echo": snapshot(child)}
    started = time.perf_counter()
    sender = threading.Thread(target=lambda: [ours.sendall(payload) for _ in range(count)])
    sender.start()
    received = 0
    while received < chunk * count:
        received += ours.recv_into(sink)
    elapsed = time.perf_counter() - started
    sender.join()
    after = {"caller": snapshot(os.getpid()), "echo": snapshot(child)}
    ours.close()
    os.waitpid(child, 0)
    print(f"raw echo, send buffers {send_buffer or 'default'}: {elapsed / count * 1e6:.0f} us/batch wall clock")
    for name in before:
        per_batch(name, before[name], after[name], count)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.executor_cpu", description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=400)
    args = parser.parse_args(argv)
    batch = sample_batch(65_536)
    raw_echo_cpu(batch, args.batches, None)
    raw_echo_cpu(batch, args.batches, SERVICE_SEND_BUFFER)
    executor_cpu(batch, args.batches)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
