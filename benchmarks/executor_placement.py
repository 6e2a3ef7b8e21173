"""Does it matter how a worker process comes to be? ``python -m benchmarks.executor_placement``.

Runs the service's own worker loop (``worker.run`` on a listening socket it
inherits) started three ways, in turn, and times the same round trips against
each (one 1,000-row int64 batch at a time, window 1, a ``scalar_pandas``
stream and then a ``map_arrow`` one, as ``executor_parts`` orders them):

- ``forked``: a child forked from this process, the caller, so the two share
  every page the fork left unwritten;
- ``fresh``: ``python -m flightpickle.executor worker``, as the supervisor
  starts workers today;
- ``template``: a child forked from a separate process started fresh, which
  imported pyarrow, pandas and the worker's modules first: what a fork
  server would give, sharing no pages with the caller.

The order of the three rotates every round. Per trip it prints the median
wall time, the CPU time of the caller's thread and of the worker's main
thread, and how often the worker blocked or was preempted; then, per
placement, what ``/proc`` shows of the worker (threads, memory shared and
private, huge pages, scheduling, signals, environment) where placements
differ, and whether the worker's code (libpython, the extension, pyarrow's
libraries) is mapped at the caller's addresses: a fork's always is;
``--template-imports-caller`` under ``setarch -R`` (no address randomization)
makes the template's too, by importing this module first as the caller did.
"""

from __future__ import annotations

import argparse
import os
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import pyarrow as pa

from benchmarks.executor import open_window_of_one
from benchmarks.executor_parts import (
    TIMEOUT,
    WARM_UP,
    context_switches,
    cpu_seconds,
    identity_batches,
    identity_column,
    the_batch,
    timed_trips,
)
from flightpickle import _native
from flightpickle.executor import worker
from flightpickle.executor.settings import Settings

PLACEMENTS = ("forked", "fresh", "template")
#: A worker's environment is compared with the caller's.
CALLER_ENVIRONMENT = Path("/proc/self/environ").read_bytes()
KINDS = ("scalar_pandas", "map_arrow")
#: The libraries a round trip runs most of its code in.
CODE_LIBRARIES = ("libpython", "_native.", "libarrow.", "lib.cpython")

# The template warms up as a fork server would, then forks one worker when
# asked (a line on stdin), says its pid and waits for the next line to end.
TEMPLATE = """
import os, sys
if sys.argv[2] == "caller-order":
    import benchmarks.executor_placement
import pandas, pyarrow
from flightpickle.executor import kinds, numpy_series, worker
from flightpickle.executor.settings import Settings
print("ready", flush=True)
sys.stdin.readline()
pid = os.fork()
if pid == 0:
    try:
        worker.run(int(sys.argv[1]), Settings())
    finally:
        os._exit(0)
print(pid, flush=True)
sys.stdin.readline()
os.waitpid(pid, 0)
"""


class PlacedWorker:
    """One worker serving ``listener``, started as ``placement`` says."""

    def __init__(self, placement: str, listener, template_order: str = "own-order"):
        fd = listener.fileno()
        self.process = None
        if placement == "forked":
            self.pid = os.fork()
            if self.pid == 0:
                try:
                    worker.run(fd, Settings())
                finally:
                    os._exit(0)
        elif placement == "fresh":
            command = [sys.executable, "-m", "flightpickle.executor", "worker", "--fd", str(fd)]
            self.process = subprocess.Popen([*command, "--settings", Settings().to_json()], pass_fds=(fd,))
            self.pid = self.process.pid
        else:
            self.process = subprocess.Popen(
                [sys.executable, "-c", TEMPLATE, str(fd), template_order],
                pass_fds=(fd,),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            if self.process.stdout.readline().strip() != "ready":
                self.process.kill()
                raise RuntimeError("the template process did not start")
            self._tell_template()
            self.pid = int(self.process.stdout.readline())

    def _tell_template(self) -> None:
        self.process.stdin.write("\n")
        self.process.stdin.flush()

    def stop(self) -> None:
        os.kill(self.pid, signal.SIGTERM)
        if self.process is None:
            os.waitpid(self.pid, 0)
            return
        if self.process.pid != self.pid:
            self._tell_template()
        self.process.wait(TIMEOUT)


def trips(path: str, pid: int, kind: str, count: int) -> dict[str, float]:
    """Round trips of one stream of ``kind`` served by the worker ``pid``."""
    batch = the_batch()
    conn = _native.Connection.connect(path, timeout=TIMEOUT, body_limit=1 << 30)
    if kind == "map_arrow":
        open_window_of_one(conn, identity_batches, kind, batch.schema, batch.schema)
    else:
        open_window_of_one(conn, identity_column, kind, batch.schema, pa.schema([("result", pa.int64())]))

    def now():
        return resource.getrusage(resource.RUSAGE_THREAD), cpu_seconds(pid), context_switches(pid)

    times, (ours, theirs, switches) = timed_trips(conn, batch, count, now)
    after, worker_cpu, worker_switches = now()
    conn.send_end(count + WARM_UP, TIMEOUT)
    while conn.recv(TIMEOUT)[0] != "status":
        pass
    conn.close()
    blocks, preempted = (later - earlier for later, earlier in zip(worker_switches, switches))
    return {
        "p50": statistics.median(times) * 1e6,
        "caller_cpu": (after.ru_utime + after.ru_stime - ours.ru_utime - ours.ru_stime) / count * 1e6,
        "worker_cpu": (worker_cpu - theirs) / count * 1e6,
        "worker_blocks": blocks / count,
        "worker_preempted": preempted / count,
    }


def process_traits(pid: int) -> dict[str, str]:
    """What the kernel shows of a process that could make it run differently."""
    status = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
    traits = {key: status[key].strip() for key in ("Threads", "SigBlk", "SigIgn", "SigCgt", "Cpus_allowed_list")}
    traits["thread names"] = " ".join(
        sorted(Path(f"/proc/{pid}/task/{task}/comm").read_text().strip() for task in os.listdir(f"/proc/{pid}/task"))
    )
    rollup = Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]
    memory = dict(line.split(":", 1) for line in rollup)
    for key in ("Rss", "Shared_Dirty", "Private_Dirty", "AnonHugePages"):
        traits[key] = memory[key].strip()
    sched_lines = Path(f"/proc/{pid}/sched").read_text().splitlines()
    sched = {key.strip(): value.strip() for key, _, value in (line.partition(":") for line in sched_lines)}
    for key in ("policy", "prio"):
        traits[key] = sched[key]
    traits["timerslack_ns"] = Path(f"/proc/{pid}/timerslack_ns").read_text().strip()
    traits["code at the caller's addresses"] = "yes" if code_addresses(pid) == code_addresses(os.getpid()) else "no"
    traits["environment"] = "same" if Path(f"/proc/{pid}/environ").read_bytes() == CALLER_ENVIRONMENT else "other"
    return traits


def code_addresses(pid: int) -> dict[str, str]:
    """Where the interpreter, this project's extension and pyarrow's libraries are mapped."""
    found = {}
    for line in Path(f"/proc/{pid}/maps").read_text().splitlines():
        fields = line.split()
        name = fields[-1].rsplit("/", 1)[-1]
        if len(fields) > 5 and name.startswith(CODE_LIBRARIES):
            found.setdefault(name, fields[0].split("-")[0])
    return found


def measure(rounds: int, count: int, template_order: str, out=sys.stdout) -> dict[tuple[str, str], list[dict]]:
    found = {(placement, kind): [] for placement in PLACEMENTS for kind in KINDS}
    traits = {}
    with tempfile.TemporaryDirectory(prefix="fpx-", dir="/tmp") as directory:
        path = f"{directory}/worker.sock"
        listener = _native.Listener.bind(path, body_limit=1 << 30)
        for round_ in range(rounds):
            turn = round_ % len(PLACEMENTS)
            for placement in PLACEMENTS[turn:] + PLACEMENTS[:turn]:
                placed = PlacedWorker(placement, listener, template_order)
                try:
                    for kind in KINDS:
                        trip = trips(path, placed.pid, kind, count)
                        found[(placement, kind)].append(trip)
                        print(f"  round {round_} {placement:9} {kind:14} {describe(trip)}", file=out, flush=True)
                    traits[placement] = process_traits(placed.pid)
                finally:
                    placed.stop()
    print_differences(traits, out)
    return found


def describe(trip: dict[str, float]) -> str:
    return (
        f"p50 {trip['p50']:7.1f} us; CPU per trip: caller {trip['caller_cpu']:5.1f}, worker"
        f" {trip['worker_cpu']:5.1f}; worker blocks {trip['worker_blocks']:.2f}, preempted"
        f" {trip['worker_preempted']:.2f} times"
    )


def print_differences(traits: dict[str, dict[str, str]], out) -> None:
    print("the workers, as /proc shows them after their streams (where placements differ)", file=out)
    for key in next(iter(traits.values())):
        values = {placement: found[key] for placement, found in traits.items()}
        if len(set(values.values())) > 1:
            print(f"  {key:18} " + "; ".join(f"{p}: {v}" for p, v in values.items()), file=out)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.executor_placement", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="one round of few trips (a smoke run)")
    parser.add_argument(
        "--template-imports-caller",
        action="store_true",
        help="the template imports this module first, as the caller did: under `setarch -R` (no address"
        " randomization) its libraries then load at the caller's addresses",
    )
    args = parser.parse_args(argv)
    rounds, count = (1, 200) if args.quick else (args.rounds, 3000)
    print("the worker loop started three ways (median us per round trip)")
    found = measure(rounds, count, "caller-order" if args.template_imports_caller else "own-order")
    print("medians over the rounds: p50 (caller / worker CPU per trip)")
    for (placement, kind), runs in found.items():
        median = {key: statistics.median(run[key] for run in runs) for key in runs[0]}
        each = ", ".join(f"{run['p50']:.1f}" for run in runs)
        print(
            f"  {placement:9} {kind:14} {median['p50']:7.1f}  ({median['caller_cpu']:.1f} /"
            f" {median['worker_cpu']:.1f})  runs: {each}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
