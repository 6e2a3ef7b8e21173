"""Runs the benchmarks and reports them: ``python -m benchmarks.run``.

Options: ``--quick`` (or FLIGHTPICKLE_BENCH_QUICK=1) for a smoke run with
few, short rounds; ``--cases lambda,ints`` to run only the cases whose
names contain one of those words; ``--no-memory`` to skip the per-process
peak memory measurements; ``--output DIR`` for the JSON and PNG (default
benchmarks/results).
"""

import argparse
import datetime
import os
import platform
import subprocess
import sys
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
    parser.add_argument("--output", type=Path, default=HERE / "results")
    return parser.parse_args(argv)


def selected_cases(words):
    wanted = [word.strip().lower() for word in words.split(",") if word.strip()]
    return [case for case in CASES if not wanted or any(word in case.name.lower() for word in wanted)]


def run_case(case, settings, with_memory):
    """One case's results: sizes, median times of dumps and loads, and for
    large cases the peak memory of dumps."""
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
    if case.large and with_memory:
        result["memory_bytes"] = {lib.name: memory.measure(case.name, lib.name)["peak_extra_bytes"] for lib in libraries}
    return result


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


def environment(settings, quick):
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
        "settings": {"rounds": settings.rounds, "batch_seconds": settings.batch_seconds, "quick": quick},
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
    results = environment(settings, arguments.quick)
    results["cases"] = []
    for case in cases:
        print(f"  {case.name} ...", file=sys.stderr, flush=True)
        results["cases"].append(run_case(case, settings, not arguments.no_memory))
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
