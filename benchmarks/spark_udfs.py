"""Benchmarks of the SQL extension: ``python -m benchmarks.spark_udfs``.

Measures, in one run on ``local-cluster[2,1,1024]`` with the plugin jar and the
Spark tests' settings, Spark's own Python operators
(``spark.flightpickle.transport=spark``) against flightpickle's
(``transport=local``, through each executor's service), against the speed
targets of issue 10:

- a default (Arrow-batched) ``udf`` ``lambda x: x + 1``, a scalar ``pandas_udf``
  ``x + 1`` and a ``mapInArrow`` identity over N rows, each summed so that every
  row is computed and nothing is pruned;
- a UDF capturing a 50 MB model over 200 tasks;
- with ``--rss SECONDS``, the resident memory of the executor JVMs and of the
  flightpickle services (supervisor and workers) while ``transport=local`` runs
  the ``udf`` case over and over for that long: the first samples against the last.

The two transports alternate within each round, the order flipping every round,
and each case reports the median of its rounds. The transport is switched at run
time in the one session: each executor's service is started by the plugin because
the session starts with ``transport=local``. Every timed query's physical plan is
checked for the operator that actually ran, so a fallback to Spark's operator is
reported, not timed as flightpickle's.

``--quick`` runs a smoke-sized version. Prints a table; ``--json FILE`` also
writes every sample. Timings are this machine's, which is shared and noisy:
compare ratios within one run.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import threading
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
# The Spark tests' cluster settings and jar lookup, so both run the same cluster.
sys.path[:0] = [str(REPO_ROOT / "tests"), str(REPO_ROOT / "tests" / "spark")]

from spark_cluster import EXECUTORS, MASTER, cluster_conf, spark_test_environment  # noqa: E402
from support import plugin_jar  # noqa: E402

from benchmarks.spark_processes import cluster_processes, resident_bytes  # noqa: E402

TRANSPORT = "spark.flightpickle.transport"
TRANSPORTS = ("spark", "local")
OURS = "FlightPickle"  # every flightpickle operator's class name starts with this
MODEL_BYTES = 50 * 1024 * 1024
MODEL_TASKS = 200
EXECUTOR_WAIT_SECONDS = 180
RSS_SAMPLE_SECONDS = 2.0
MODEL_CASE = "udf with 50 MB model, 200 tasks"
CASES = ("udf x + 1", "pandas_udf x + 1", "mapInArrow identity", MODEL_CASE)


def start_session(partitions: int, extra_confs: dict[str, str] | None = None):
    """A session on the Spark tests' cluster, starting every executor's service;
    ``extra_confs`` are set over the cluster's own."""
    from pyspark.sql import SparkSession

    os.environ.update(spark_test_environment())
    confs = {
        **cluster_conf(str(plugin_jar())),
        "spark.ui.showConsoleProgress": "false",
        "spark.sql.shuffle.partitions": str(partitions),
        TRANSPORT: "local",
        **(extra_confs or {}),
    }
    builder = SparkSession.builder.appName("flightpickle-benchmark-spark-udfs")
    for key, value in confs.items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    wait_for_executors(session)
    return session


def wait_for_executors(session) -> None:
    tracker = session.sparkContext._jsc.sc().statusTracker()
    deadline = time.monotonic() + EXECUTOR_WAIT_SECONDS
    while len(tracker.getExecutorInfos()) - 1 < EXECUTORS:  # the driver is listed too
        if time.monotonic() > deadline:
            raise SystemExit(f"fewer than {EXECUTORS} executors registered in {EXECUTOR_WAIT_SECONDS}s")
        time.sleep(0.5)


def plus_one_udf():
    from pyspark.sql.functions import udf

    return udf(lambda x: x + 1, "long")


def plus_one_pandas_udf():
    from pyspark.sql.functions import pandas_udf

    return pandas_udf(lambda series: series + 1, "long")


def identity_batches(batches):
    yield from batches


def model_udf():
    """A UDF whose closure holds a 50 MB array: each task that unpickles it pays for 50 MB."""
    import numpy as np
    from pyspark.sql.functions import udf

    model = np.arange(MODEL_BYTES // 8, dtype=np.int64)
    return udf(lambda x: x + int(model[x % len(model)]), "long")


def summed(frame, column: str):
    """Sum the result on the executors: every row is computed, one number comes back."""
    from pyspark.sql.functions import sum as sum_

    return frame.agg(sum_(column).alias("total"))


def case_queries(spark, rows: int, partitions: int, model_rows: int | None) -> dict:
    """Each case's query; the functions are made once, so both transports run the same commands."""
    numbers = spark.range(0, rows, numPartitions=partitions)
    scalar_udf, scalar_pandas = plus_one_udf(), plus_one_pandas_udf()
    queries = {
        "udf x + 1": lambda: summed(numbers.select(scalar_udf("id").alias("r")), "r"),
        "pandas_udf x + 1": lambda: summed(numbers.select(scalar_pandas("id").alias("r")), "r"),
        "mapInArrow identity": lambda: summed(numbers.mapInArrow(identity_batches, "id long"), "id"),
    }
    if model_rows:
        with_model = model_udf()
        model_input = spark.range(0, model_rows, numPartitions=MODEL_TASKS)
        queries[MODEL_CASE] = lambda: summed(model_input.select(with_model("id").alias("r")), "r")
    return queries


def operator_that_ran(frame) -> str:
    """``flightpickle`` when the plan holds flightpickle's operator, ``spark`` otherwise."""
    plan = frame._jdf.queryExecution().executedPlan().toString()
    return "flightpickle" if OURS in plan else "spark"


def timed_run(spark, transport: str, build) -> tuple[float, str, int]:
    """Seconds for one query under ``transport``, the operator that ran, and its result."""
    spark.conf.set(TRANSPORT, transport)
    try:
        frame = build()
        start = time.perf_counter()
        total = frame.collect()[0].total
        elapsed = time.perf_counter() - start
        return elapsed, operator_that_ran(frame), total
    finally:
        spark.conf.unset(TRANSPORT)


def measure_case(spark, build, rounds: int) -> dict:
    """Alternate the transports for ``rounds`` rounds; the median absorbs the first round's
    one-time costs (Python workers started, the function opened), so there is no warm-up run."""
    samples = {transport: [] for transport in TRANSPORTS}
    operators, totals = {}, {}
    for round_index in range(rounds):
        order = TRANSPORTS if round_index % 2 == 0 else TRANSPORTS[::-1]
        for transport in order:
            elapsed, operators[transport], totals[transport] = timed_run(spark, transport, build)
            samples[transport].append(elapsed)
    if totals["spark"] != totals["local"]:
        raise SystemExit(f"the transports disagree: {totals}")
    medians = {transport: statistics.median(times) for transport, times in samples.items()}
    return {
        "samples_s": samples,
        "median_s": medians,
        "speedup": medians["spark"] / medians["local"],
        "operator_with_local": operators["local"],
        "operator_with_spark": operators["spark"],
    }


def process_groups() -> dict[str, list[int]]:
    """Pids of this run's executor JVMs and of their flightpickle services with their workers."""
    groups: dict[str, list[int]] = {"executor JVMs": [], "flightpickle services": []}
    for process in cluster_processes():
        group = "executor JVMs" if process.role == "executor JVM" else "flightpickle services"
        groups[group].append(process.pid)
    return groups


def total_resident_bytes(pids: list[int]) -> int:
    return sum(resident_bytes(pid) or 0 for pid in pids)  # None: ended since it was listed


def sample_rss(stop: threading.Event, samples: list) -> None:
    start = time.monotonic()
    while not stop.is_set():
        groups = process_groups()
        samples.append(
            {"t_s": time.monotonic() - start, **{name: total_resident_bytes(pids) for name, pids in groups.items()}}
        )
        stop.wait(RSS_SAMPLE_SECONDS)


def measure_rss(spark, build, seconds: float) -> dict:
    """Run ``build`` with ``transport=local`` for ``seconds`` while sampling resident memory."""
    samples: list = []
    stop = threading.Event()
    sampler = threading.Thread(target=sample_rss, args=(stop, samples), daemon=True)
    sampler.start()
    deadline = time.monotonic() + seconds
    queries = 0
    try:
        while time.monotonic() < deadline:
            timed_run(spark, "local", build)
            queries += 1
    finally:
        stop.set()
        sampler.join()
    window = max(1, len(samples) // 10)  # a tenth of the run at each end
    names = [name for name in samples[0] if name != "t_s"]
    ends = {
        name: {
            "start_mb": statistics.median(s[name] for s in samples[:window]) / 1e6,
            "end_mb": statistics.median(s[name] for s in samples[-window:]) / 1e6,
        }
        for name in names
    }
    return {"seconds": seconds, "queries": queries, "groups": ends, "samples": samples}


def print_results(results: dict) -> None:
    header = f"{'case':34} {'spark s':>9} {'local s':>9} {'x faster':>9}  operator with local"
    print(header)
    print("-" * len(header))
    for name, case in results["cases"].items():
        if "skipped" in case:
            print(f"{name:34} skipped: {case['skipped']}")
            continue
        medians = case["median_s"]
        print(
            f"{name:34} {medians['spark']:9.2f} {medians['local']:9.2f} {case['speedup']:9.2f}"
            f"  {case['operator_with_local']}"
        )
    if "rss" in results:
        rss = results["rss"]
        print(f"\nresident memory over {rss['seconds']:.0f} s of transport=local ({rss['queries']} queries):")
        for name, ends in rss["groups"].items():
            print(f"  {name:24} start {ends['start_mb']:8.1f} MB  end {ends['end_mb']:8.1f} MB")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.spark_udfs", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: 200,000 rows, one round")
    parser.add_argument("--rows", type=int, help="rows per scalar and map case (default 10,000,000)")
    parser.add_argument("--rounds", type=int, help="timed rounds per case and transport (default 3)")
    parser.add_argument("--partitions", type=int, default=4, help="partitions of the scalar and map cases")
    parser.add_argument("--no-model", action="store_true", help="skip the 50 MB model case")
    parser.add_argument("--rss", type=float, metavar="SECONDS", help="also sample RSS over a run this long")
    parser.add_argument(
        "--case", action="append", metavar="NAME", help="run only this case (repeatable), e.g. 'pandas_udf x + 1'"
    )
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    unknown = sorted(set(args.case or ()) - set(CASES))
    if unknown:
        parser.error(f"unknown case(s) {unknown}; the cases are {list(CASES)}")
    rows = args.rows or (200_000 if args.quick else 10_000_000)
    rounds = args.rounds or (1 if args.quick else 3)
    model_rows = MODEL_TASKS * (10 if args.quick else 1000)

    spark = start_session(args.partitions)
    results = {
        "settings": {
            "master": MASTER,
            "rows": rows,
            "rounds": rounds,
            "partitions": args.partitions,
            "model_rows": model_rows,
            "max_records_per_batch": spark.conf.get("spark.sql.execution.arrow.maxRecordsPerBatch"),
        },
        "cases": {},
    }
    try:
        queries = case_queries(spark, rows, args.partitions, None if args.no_model else model_rows)
        for name, build in queries.items():
            if args.case and name not in args.case:
                results["cases"][name] = {"skipped": "--case"}
                continue
            print(f"measuring {name} ...", file=sys.stderr, flush=True)
            # The model case's tasks are slow under either transport: one round of it.
            results["cases"][name] = measure_case(spark, build, 1 if name == MODEL_CASE else rounds)
        if args.no_model:
            results["cases"][MODEL_CASE] = {"skipped": "--no-model"}
        if args.rss:
            print(f"sampling RSS for {args.rss:.0f} s ...", file=sys.stderr, flush=True)
            results["rss"] = measure_rss(spark, queries["udf x + 1"], args.rss)
    finally:
        spark.stop()
    print_results(results)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
