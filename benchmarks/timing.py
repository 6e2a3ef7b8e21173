"""Interleaved timing: every library runs one batch per round, in an order
that rotates each round, so that a slow spell of a shared machine hits all
of them alike. Medians of the per-call times of the rounds are reported."""

import gc
import statistics
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class Settings:
    rounds: int
    batch_seconds: float


FULL = Settings(rounds=15, batch_seconds=0.02)
QUICK = Settings(rounds=3, batch_seconds=0.002)


def compare(runners, settings):
    """{name: per-call seconds of each round} for `runners` ({name: callable})."""
    for runner in runners.values():
        runner()  # a first call's one-off costs: lazy imports, caches filled
    calls = calls_per_batch(runners, settings.batch_seconds)
    for runner in runners.values():
        run_batch(runner, calls)  # warm-up at full size: caches, allocator
    samples = {name: [] for name in runners}
    names = list(runners)
    for round_index in range(settings.rounds):
        shift = round_index % len(names)
        for name in names[shift:] + names[:shift]:
            samples[name].append(run_batch(runners[name], calls) / calls)
    return samples


def calls_per_batch(runners, batch_seconds):
    """One count for all runners, sized on the slowest, so that each batch
    takes about `batch_seconds` and fast calls are not lost in timer noise.
    Sized on warm calls: a single call can be many times slower than the
    rest (a first load), and batches sized on it were a few calls long."""
    slowest = max(warm_seconds_per_call(runner, batch_seconds / 10) for runner in runners.values())
    return max(1, int(batch_seconds / max(slowest, 1e-9)))


def warm_seconds_per_call(runner, probe_seconds):
    """Seconds per call of a batch that takes at least `probe_seconds`,
    doubling the batch until one does."""
    calls = 1
    while True:
        elapsed = run_batch(runner, calls)
        if elapsed >= probe_seconds or calls >= 1 << 20:
            return elapsed / calls
        calls *= 2


def run_batch(runner, calls):
    """Seconds for `calls` calls, with the collector paused as timeit does
    (collections would land on whichever library happens to be running)."""
    gc.collect()
    gc.disable()
    try:
        start = time.perf_counter()
        for _ in range(calls):
            runner()
        return time.perf_counter() - start
    finally:
        gc.enable()


def median(samples):
    return statistics.median(samples)


def ratio(op_timing, numerator, denominator):
    """`numerator`'s median time over `denominator`'s for one case and op.
    Timed in several processes, it is the median of each process's own
    ratio: the two libraries of one process ran interleaved, so what slowed
    that process slowed both, where medians taken apart would pair one
    process's time with another's."""
    per_process = op_timing.get("process_medians_seconds")
    if per_process is None:
        medians = op_timing["median_seconds"]
        return medians[numerator] / medians[denominator]
    return statistics.median(a / b for a, b in zip(per_process[numerator], per_process[denominator]))
