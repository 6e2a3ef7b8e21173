"""Memory soak of the SQL extension: ``python -m benchmarks.spark_memory``.

Runs a mix of Python UDF queries with ``spark.flightpickle.transport=local`` (or,
with ``--transport spark``, through Spark's own operators, as a control) on
``local-cluster[2,1,1024]`` (the Spark tests' settings) for ``--minutes`` (10 by
default), after a minute's warm-up, and samples every few seconds the
resident memory (``VmRSS``) of each executor JVM, each executor's service
supervisor and each of its workers, plus each executor JVM's heap from its
HotSpot counters. The issue 10 target is that executor memory stays flat over a
10-minute job.

For each process it reports the median of the first minute after warm-up, the
median of the last minute, the growth between them and a verdict: flat when the
last-minute median is within ``--tolerance`` percent (5 by default) of the first.
Five percent is about three times the spread of an executor JVM's RSS in an earlier
3-minute run once warm (751-772 MB), while a leak of anything per batch, task or
query compounds over the ~9 minutes between the two windows: a run makes tens of
queries of hundreds of batches each, so a leak that survives one window to the
next grows past that.

``--quick`` runs one minute on fewer rows, with 20-second windows: a smoke run.
Prints a table; writes JSON with every sample (and a PNG of RSS over time) to
``--output`` (``benchmarks/results`` by default). Every query runs the chosen
transport's operator (checked in its plan) and its sum is checked. Bounded: the mix stops at
the deadline, a watchdog cancels a query still running well after it, and on the
way out the session is stopped and any process it started that outlived it is
killed.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

from benchmarks import hsperfdata, malloc_heaps, spark_udfs
from benchmarks.report import table
from benchmarks.spark_processes import cluster_processes, resident_parts
from benchmarks.spark_udfs import (
    MASTER,
    OURS,
    TRANSPORT,
    identity_batches,
    plus_one_pandas_udf,
    plus_one_udf,
    start_session,
    summed,
)

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_ROWS = 2_000_000
QUICK_ROWS = 300_000
GROUPS = 64
# An executor JVM's RSS rises over its first minute of work as it touches its committed
# heap for the first time (eden fills its whole space before each young collection, the
# old generation fills until the first full one): its working size, not growth.
WARM_UP_SECONDS = 60.0
QUICK_WARM_UP_SECONDS = 15.0
WINDOW_SECONDS = 60.0
QUICK_WINDOW_SECONDS = 20.0
# Queries still running this long after the measured duration (which the warm-up and
# the last query of the mix overrun by a few minutes at most) are cancelled.
WATCHDOG_SLACK_SECONDS = 600.0
STOP_WAIT_SECONDS = 30.0


def shifted_group(frame):
    """applyInPandas: the group's rows back, each ``id`` plus one."""
    return frame.assign(id=frame["id"] + 1)[["key", "id"]]


def ship_by_value(module) -> None:
    """Executors cannot import ``benchmarks``: its functions travel by value, with either pickler."""
    import flightpickle
    from pyspark import cloudpickle

    flightpickle.register_pickle_by_value(module)
    cloudpickle.register_pickle_by_value(module)


def job_mix(spark, rows: int, partitions: int) -> dict:
    """Each query of the mix with the sum it must return; every query computes every row."""
    from pyspark.sql.functions import col

    ship_by_value(spark_udfs)
    numbers = spark.range(0, rows, numPartitions=partitions)
    keyed = numbers.withColumn("key", col("id") % GROUPS)
    scalar_udf, scalar_pandas = plus_one_udf(), plus_one_pandas_udf()
    plain, plus_one = rows * (rows - 1) // 2, rows * (rows - 1) // 2 + rows
    return {
        "udf": (lambda: summed(numbers.select(scalar_udf("id").alias("r")), "r"), plus_one),
        "pandas_udf": (lambda: summed(numbers.select(scalar_pandas("id").alias("r")), "r"), plus_one),
        "mapInArrow": (lambda: summed(numbers.mapInArrow(identity_batches, "id long"), "id"), plain),
        "applyInPandas": (
            lambda: summed(keyed.groupBy("key").applyInPandas(shifted_group, "key long, id long"), "id"),
            plus_one,
        ),
    }


def run_query(name: str, build, expected: int, transport: str) -> None:
    frame = build()
    total = frame.collect()[0].total
    # Read after running: adaptive execution plans flightpickle's operator as the query runs.
    plan = frame._jdf.queryExecution().executedPlan().toString()
    if (OURS in plan) != (transport == "local"):
        raise SystemExit(f"{name} did not run the operator of transport={transport}; its plan:\n{plan}")
    if total != expected:
        raise SystemExit(f"{name} returned {total}, expected {expected}")


def sample_once(start: float) -> dict:
    """One sample: every cluster process's RSS, and each executor JVM's heap counters and
    the part of its RSS that glibc's malloc holds."""
    processes = {}
    for process in cluster_processes():
        parts = resident_parts(process.pid)
        if parts is None:
            continue
        entry = {"role": process.role, "executor": process.executor, "pid": process.pid, **parts}
        if process.role == "executor JVM":
            entry["heap"] = hsperfdata.heap_use(process.pid)
            held = malloc_heaps.malloc_heaps(process.pid)
            if held is not None:
                entry["malloc_rss"], entry["malloc_arena_heaps"] = held.rss, held.arena_heaps
        processes[process.label] = entry
    return {"t_s": time.monotonic() - start, "processes": processes}


def sample_until(stop: threading.Event, start: float, interval: float, samples: list) -> None:
    while not stop.is_set():
        samples.append(sample_once(start))
        stop.wait(interval)


def cancel_after(spark, deadline: float, done: threading.Event) -> None:
    """The watchdog: cancel whatever still runs long after the deadline."""
    if not done.wait(max(0.0, deadline - time.monotonic())):
        print("watchdog: cancelling the queries still running", file=sys.stderr, flush=True)
        spark.sparkContext.cancelAllJobs()


def run_mix(mix: dict, transport: str, warm_up: float, seconds: float, origin: float, log) -> dict:
    """Rounds of the mix for at least ``warm_up`` seconds (one round at least), then
    rounds until ``seconds`` more have passed; times in the result count from ``origin``."""
    started = time.monotonic()
    while True:
        for name, (build, expected) in mix.items():
            run_query(name, build, expected, transport)
        if time.monotonic() - started >= warm_up:
            break
    warm = time.monotonic()
    log(f"warm-up took {warm - started:.0f} s; measuring for {seconds:.0f} s")
    counts = dict.fromkeys(mix, 0)
    while time.monotonic() - warm < seconds:
        for name, (build, expected) in mix.items():
            if time.monotonic() - warm >= seconds:
                break
            run_query(name, build, expected, transport)
            counts[name] += 1
    return {
        "warm_up_s": warm - started,
        "measured_s": time.monotonic() - warm,
        "warm_end_t_s": warm - origin,
        "end_t_s": time.monotonic() - origin,
        "queries": counts,
    }


def series(samples: list, label: str, value) -> list[tuple[float, float]]:
    """(time, value) of one process over the samples that saw it."""
    points = []
    for sample in samples:
        entry = sample["processes"].get(label)
        measured = value(entry) if entry else None
        if measured is not None:
            points.append((sample["t_s"], measured))
    return points


def judge(points, first: tuple[float, float], last: tuple[float, float], tolerance: float) -> dict:
    """Medians of the two windows, the growth between them and the verdict."""
    in_first = [v for t, v in points if first[0] <= t < first[1]]
    in_last = [v for t, v in points if last[0] <= t <= last[1]]
    if not in_first or not in_last:
        return {"verdict": "not in both windows (started or ended during the run)"}
    first_median, last_median = statistics.median(in_first), statistics.median(in_last)
    growth = 100.0 * (last_median - first_median) / first_median if first_median else 0.0
    return {
        "first_median": first_median,
        "last_median": last_median,
        "growth_pct": growth,
        "verdict": "flat" if growth <= tolerance else "GREW",
    }


MEASURES = {
    "RSS": lambda entry: entry["rss"],
    "RSS anonymous": lambda entry: entry.get("rss_anon"),
    "RSS file-backed": lambda entry: entry.get("rss_file"),
    "RSS in malloc heaps": lambda entry: entry.get("malloc_rss"),
    "heap used": lambda entry: (entry.get("heap") or {}).get("heap_used"),
    "old gen used": lambda entry: (entry.get("heap") or {}).get("old_gen_used"),
    "heap committed": lambda entry: (entry.get("heap") or {}).get("heap_committed"),
    "metaspace used": lambda entry: (entry.get("heap") or {}).get("metaspace_used"),
}


def verdicts(samples: list, windows: dict, tolerance: float) -> list[dict]:
    """Per process and measure; only RSS is judged against the target, the heap rows
    (executor JVMs) say where a JVM's growth would be."""
    labels = sorted({label for sample in samples for label in sample["processes"]})
    rows = []
    for label in labels:
        for measure, value in MEASURES.items():
            points = series(samples, label, value)
            if not points:
                continue
            result = judge(points, windows["first"], windows["last"], tolerance)
            if measure != "RSS" and "growth_pct" in result:
                result["verdict"] = "(not judged)"
            rows.append({"process": label, "measure": measure, **result})
    return rows


def megabytes(value) -> str:
    return "-" if value is None else f"{value / 1e6:.1f}"


def print_table(rows: list[dict]) -> None:
    header = ["process", "measure", "first min MB", "last min MB", "growth %", "verdict"]
    lines = [
        [
            row["process"],
            row["measure"],
            megabytes(row.get("first_median")),
            megabytes(row.get("last_median")),
            f"{row['growth_pct']:+.1f}" if "growth_pct" in row else "-",
            row["verdict"],
        ]
        for row in rows
    ]
    print(table(header, lines))


def plot(samples: list, warm_end: float, transport: str, path: Path) -> bool:
    """RSS over time per process, if matplotlib is installed; False if it is not."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    labels = sorted({label for sample in samples for label in sample["processes"]})
    figure, axes = plt.subplots(figsize=(10, 5))
    for label in labels:
        points = series(samples, label, MEASURES["RSS"])
        axes.plot([(t - warm_end) / 60 for t, _ in points], [v / 1e6 for _, v in points], label=label)
    axes.axvline(0, color="grey", linestyle="--", linewidth=1)
    axes.set_xlabel("minutes after warm-up (the dashed line)")
    axes.set_ylabel("RSS (MB)")
    axes.set_title(f"Resident memory, transport={transport}, local-cluster[2,1,1024]")
    axes.legend(fontsize="small")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return True


def commit_id() -> str:
    try:
        result = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return result.stdout.strip() or "unknown"


def stop_cluster(spark) -> None:
    """Stop the session, then kill whatever cluster process of ours outlived it."""
    remaining = cluster_processes()
    spark.stop()
    deadline = time.monotonic() + STOP_WAIT_SECONDS
    while remaining and time.monotonic() < deadline:
        time.sleep(0.5)
        remaining = cluster_processes()
    for process in remaining:
        print(f"killing {process.label} (pid {process.pid}), still alive after stop", file=sys.stderr)
        try:
            os.kill(process.pid, signal.SIGKILL)
        except OSError:
            pass  # it ended meanwhile


def spark_conf(text: str) -> tuple[str, str]:
    """``KEY=VALUE`` of ``--conf``, as ``spark-submit`` takes it."""
    key, equals, value = text.partition("=")
    if not equals or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, not {text!r}")
    return key.strip(), value


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.spark_memory", description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="measured duration after warm-up (default 10)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 1 minute, 300,000 rows, 20 s windows")
    parser.add_argument("--rows", type=int, help=f"rows per query (default {DEFAULT_ROWS:,})")
    parser.add_argument("--partitions", type=int, default=4, help="partitions per query (default 4)")
    parser.add_argument("--transport", choices=("local", "spark"), default="local",
                        help="local (default), or spark: Spark's own operators, as a control")
    parser.add_argument("--warm-up", type=float, help="seconds of the mix before measuring (default 60; quick 15)")
    parser.add_argument("--interval", type=float, default=5.0, help="seconds between samples (default 5)")
    parser.add_argument("--tolerance", type=float, default=5.0, help="growth %% still called flat (default 5)")
    parser.add_argument("--output", type=Path, default=REPO_ROOT / "benchmarks" / "results")
    parser.add_argument("--conf", type=spark_conf, action="append", default=[], metavar="KEY=VALUE",
                        help="a Spark conf set over the cluster's (repeatable), e.g. to probe an executor's JVM")
    args = parser.parse_args(argv)
    if args.quick:
        args.minutes = 1.0
    if args.warm_up is None:
        args.warm_up = QUICK_WARM_UP_SECONDS if args.quick else WARM_UP_SECONDS
    args.rows = args.rows or (QUICK_ROWS if args.quick else DEFAULT_ROWS)
    args.window = QUICK_WINDOW_SECONDS if args.quick else min(WINDOW_SECONDS, args.minutes * 60 / 3)
    return args


def main(argv=None) -> int:
    args = parse_args(argv)

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    seconds = args.minutes * 60
    log("starting the cluster ...")
    spark = start_session(args.partitions, dict(args.conf))
    start = time.monotonic()
    samples: list = []
    stop, done = threading.Event(), threading.Event()
    sampler = threading.Thread(target=sample_until, args=(stop, start, args.interval, samples), daemon=True)
    try:
        sampler.start()
        # The session starts with transport=local, so every executor's service runs either way.
        spark.conf.set(TRANSPORT, args.transport)
        mix = job_mix(spark, args.rows, args.partitions)
        watchdog_deadline = time.monotonic() + seconds + WATCHDOG_SLACK_SECONDS
        threading.Thread(target=cancel_after, args=(spark, watchdog_deadline, done), daemon=True).start()
        run = run_mix(mix, args.transport, args.warm_up, seconds, start, log)
    finally:
        done.set()
        stop.set()
        sampler.join()
        stop_cluster(spark)
    warm_end, end = run["warm_end_t_s"], run["end_t_s"]
    windows = {"first": (warm_end, warm_end + args.window), "last": (end - args.window, end)}
    rows = verdicts(samples, windows, args.tolerance)
    print_summary(run, args, rows)
    write_outputs(args, {"run": run, "windows_s": windows, "verdicts": rows, "samples": samples})
    judged = [row for row in rows if row["measure"] == "RSS" and row["verdict"] in ("flat", "GREW")]
    return 1 if any(row["verdict"] == "GREW" for row in judged) else 0


def print_summary(run: dict, args, rows: list[dict]) -> None:
    counts = ", ".join(f"{name} {count}" for name, count in run["queries"].items())
    print(f"{sum(run['queries'].values())} queries in {run['measured_s']:.0f} s "
          f"after a {run['warm_up_s']:.0f} s warm-up: {counts}")
    print(f"windows of {args.window:.0f} s; flat = last-window median within {args.tolerance:g}% of the first's\n")
    print_table(rows)


def write_outputs(args, measured: dict) -> None:
    """The JSON of the settings and every sample, and the PNG next to it."""
    settings = {
        "master": MASTER,
        TRANSPORT: args.transport,
        "rows": args.rows,
        "partitions": args.partitions,
        "minutes": args.minutes,
        "interval_s": args.interval,
        "window_s": args.window,
        "tolerance_pct": args.tolerance,
        "confs": dict(args.conf),
        "commit": commit_id(),
    }
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    args.output.mkdir(parents=True, exist_ok=True)
    json_path = args.output / f"spark-memory-{stamp}-{settings['commit']}.json"
    json_path.write_text(json.dumps({"settings": settings, **measured}, indent=1))
    print(f"\nJSON: {json_path}")
    png_path = json_path.with_suffix(".png")
    if plot(measured["samples"], measured["run"]["warm_end_t_s"], args.transport, png_path):
        print(f"PNG:  {png_path}")

if __name__ == "__main__":
    sys.exit(main())
