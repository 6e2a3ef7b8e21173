"""Runs the benchmarks and reports them: ``python -m benchmarks.run``.

Options: ``--quick`` (or FLIGHTPICKLE_BENCH_QUICK=1) for a smoke run with
few, short rounds; ``--cases lambda,ints`` to run only the cases whose
names contain one of those words; ``--no-memory`` to skip the per-process
peak memory measurements; ``--processes N`` to time the cases in N fresh
processes, one after another, and report the median of their ratios
(default 3, 1 with ``--quick``); ``--output DIR`` for the JSON and PNG
(default benchmarks/results).
"""

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import cloudpickle

import flightpickle
from flightpickle import _native
from benchmarks import memory, report, targets, timing
from benchmarks.cases import CASES, libraries_for

HERE = Path(__file__).resolve().parent


def parse_arguments(argv):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", default=os.environ.get("FLIGHTPICKLE_BENCH_QUICK") == "1")
    parser.add_argument("--cases", default="", help="comma-separated words; a case runs if its name has one")
    parser.add_argument("--no-memory", action="store_true")
    parser.add_argument("--processes", type=int, default=None, help="processes that time the cases (default 3)")
    parser.add_argument("--output", type=Path, default=HERE / "results")
    # Internal: a process started by `timed_in_processes` writes its cases here.
    parser.add_argument("--timings-to", type=Path, help=argparse.SUPPRESS)
    arguments = parser.parse_args(argv)
    if arguments.processes is None:
        arguments.processes = 1 if arguments.quick else 3
    if arguments.processes < 1:
        parser.error("--processes must be at least 1")
    return arguments


def selected_cases(words):
    wanted = [word.strip().lower() for word in words.split(",") if word.strip()]
    return [case for case in CASES if not wanted or any(word in case.name.lower() for word in wanted)]


def run_case(case, settings):
    """One case's sizes and median times of dumps and loads (and, for code,
    of first loads)."""
    obj = case.build()
    libraries = libraries_for(case)
    pickles = {lib.name: lib.dump(obj, case.out_of_band) for lib in libraries}
    for lib in libraries:
        lib.load(*pickles[lib.name])  # a pickle that does not load measures nothing
    dumps = {lib.name: dumper(lib, obj, case.out_of_band) for lib in libraries}
    loads = {lib.name: loader(lib, *pickles[lib.name]) for lib in libraries}
    result = {
        "name": case.name,
        "group": case.group,
        "size_bytes": {name: len(payload) for name, (payload, _) in pickles.items()},
        "ops": {"dumps": summarize(timing.compare(dumps, settings)), "loads": summarize(timing.compare(loads, settings))},
    }
    if case.group == "code":
        first_loads = {lib.name: first_loader(lib, *pickles[lib.name]) for lib in libraries}
        result["ops"]["first loads"] = summarize(timing.compare(first_loads, settings))
    return result


def timed_cases(cases, settings, arguments):
    if arguments.processes == 1:
        return [timed_case(case, settings) for case in cases]
    return timed_in_processes(cases, arguments)


def timed_case(case, settings):
    print(f"  {case.name} ...", file=sys.stderr, flush=True)
    return run_case(case, settings)


def timed_in_processes(cases, arguments):
    """The cases timed in `arguments.processes` fresh processes, one after
    another: each process has its own addresses and string hashes, and so
    its own layout of the caches, which moves a small load's ratio by a few
    tenths from one process to the next. `merged` keeps each process's
    medians, from which `timing.ratio` takes the median ratio."""
    runs = []
    with tempfile.TemporaryDirectory() as directory:
        for index in range(arguments.processes):
            print(f"process {index + 1} of {arguments.processes}:", file=sys.stderr, flush=True)
            out = Path(directory) / f"{index}.json"
            command = [sys.executable, "-m", "benchmarks.run", "--processes", "1", "--timings-to", str(out)]
            command += ["--cases", arguments.cases] + (["--quick"] if arguments.quick else [])
            subprocess.run(command, cwd=HERE.parent, check=True)
            runs.append(json.loads(out.read_text()))
    return [merged(per_process) for per_process in zip(*runs)]


def merged(per_process):
    """One case's results from several processes' results for it."""
    first = per_process[0]
    ops = {}
    for op in first["ops"]:
        runs = [run["ops"][op] for run in per_process]
        medians = {lib: [run["median_seconds"][lib] for run in runs] for lib in runs[0]["median_seconds"]}
        ops[op] = {
            "median_seconds": {lib: statistics.median(values) for lib, values in medians.items()},
            "process_medians_seconds": medians,
            "samples_seconds": {lib: [s for run in runs for s in run["samples_seconds"][lib]] for lib in medians},
        }
    return dict(first, ops=ops)


def add_memory(case_results, cases):
    for result, case in zip(case_results, cases):
        if case.large:
            result["memory_bytes"] = {lib.name: memory.measure(case.name, lib.name)["peak_extra_bytes"] for lib in libraries_for(case)}


def dumper(lib, obj, out_of_band):
    return lambda: lib.dump(obj, out_of_band)


def loader(lib, payload, buffers):
    return lambda: lib.load(payload, buffers)


def first_loader(lib, payload, buffers):
    """Loads as a process's first load of this code: flightpickle's loads
    reuse the code objects earlier loads made from the same fields (a
    worker's second task on), and both libraries' loads take a class they
    already track, so each library forgets its own before each call."""
    forget = lib.forget_loads

    def load():
        forget()
        lib.load(payload, buffers)

    return load


def summarize(samples):
    return {
        "median_seconds": {name: timing.median(values) for name, values in samples.items()},
        "samples_seconds": samples,
    }


def environment(settings, arguments):
    return {
        "when": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "commit": git("rev-parse", "--short", "HEAD"),
        "dirty": bool(git("status", "--porcelain", "--untracked-files=no")),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count()},
        "versions": {
            "python": platform.python_version(),
            "flightpickle": flightpickle.__version__,
            "cloudpickle": cloudpickle.__version__,
        },
        "profile_guided_build": _native.PROFILE_GUIDED,
        "settings": {
            "rounds": settings.rounds,
            "batch_seconds": settings.batch_seconds,
            "quick": arguments.quick,
            "processes": arguments.processes,
        },
    }


def git(*args):
    done = subprocess.run(["git", *args], cwd=HERE, capture_output=True, text=True)
    return done.stdout.strip() if done.returncode == 0 else None


def main(argv=None):
    arguments = parse_arguments(argv)
    settings = timing.QUICK if arguments.quick else timing.FULL
    cases = selected_cases(arguments.cases)
    if not cases:
        sys.exit(f"no case matches {arguments.cases!r}")
    if arguments.timings_to:
        arguments.timings_to.write_text(json.dumps([timed_case(case, settings) for case in cases]))
        return
    results = environment(settings, arguments)
    results["cases"] = timed_cases(cases, settings, arguments)
    if not arguments.no_memory:
        add_memory(results["cases"], cases)
    verdicts = targets.judge(results)
    print(report.text(results, verdicts))
    save(results, verdicts, arguments.output)


def save(results, verdicts, directory):
    directory.mkdir(parents=True, exist_ok=True)
    stamp = results["when"].replace(":", "").replace("+0000", "Z")
    name = f"{stamp}-{results['commit'] or 'unknown'}"
    report.write_json(results, verdicts, directory / f"{name}.json")
    report.write_json(results, verdicts, directory / "latest.json")
    report.write_chart(results, directory / "latest.png")
    print(f"\nwrote {directory / (name + '.json')}, latest.json and latest.png", file=sys.stderr)


if __name__ == "__main__":
    main()
