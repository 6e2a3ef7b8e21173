"""The benchmark harness still runs end to end (quickest mode, two cases)
and writes its three outputs. It judges no timing: a benchmark is not a test."""

import json
import time
import subprocess
import sys
from pathlib import Path

from flightpickle import _native

REPO = Path(__file__).resolve().parent.parent


def test_quick_run_writes_table_json_and_chart(tmp_path):
    command = [sys.executable, "-m", "benchmarks.run", "--quick", "--cases", "lambda,1M ints", "--output", str(tmp_path)]
    # A child process: the harness registers modules for by-value pickling.
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr

    assert "x faster than cloudpickle" in done.stdout
    assert "Targets (issue 6):" in done.stdout
    results = json.loads((tmp_path / "latest.json").read_text())
    # Whether the extension was built with a profile is said, as the numbers depend on it.
    assert results["profile_guided_build"] is _native.PROFILE_GUIDED
    assert ("extension build: profile-guided" in done.stdout) is _native.PROFILE_GUIDED
    assert [case["name"] for case in results["cases"]] == ["lambda", "1M ints"]
    # Code cases also time a process's first load, beside the loads verdict.
    assert set(results["cases"][0]["ops"]) == {"dumps", "loads", "first loads"}
    assert set(results["cases"][1]["ops"]) == {"dumps", "loads"}
    assert "first loads" in next(t["summary"] for t in results["targets"] if t["target"].startswith("loads of"))
    ints = results["cases"][1]
    assert set(ints["ops"]["dumps"]["median_seconds"]) == {"flightpickle", "cloudpickle", "pickle"}
    assert set(ints["memory_bytes"]) == {"flightpickle", "cloudpickle", "pickle"}
    assert len(results["targets"]) == 7
    assert (tmp_path / "latest.png").read_bytes().startswith(b"\x89PNG")


def test_batches_are_sized_on_warm_calls_not_a_slow_first_one(monkeypatch):
    from benchmarks import timing

    called = []

    def slow_once():
        # A first load's one-off cost, many times a warm call's.
        if not called:
            time.sleep(0.05)
        called.append(None)

    batch_sizes = []
    run_batch = timing.run_batch
    monkeypatch.setattr(timing, "run_batch", lambda runner, calls: batch_sizes.append(calls) or run_batch(runner, calls))
    samples = timing.compare({"slow once": slow_once}, timing.Settings(rounds=2, batch_seconds=0.01))

    assert len(samples["slow once"]) == 2
    # Sized on the 50 ms call, a batch would be one call long; warm calls
    # take well under a microsecond, so a 10 ms batch holds hundreds.
    assert batch_sizes[-1] == batch_sizes[-2] > 100


def test_cases_timed_in_several_processes_report_the_median_of_theirs(tmp_path):
    command = [sys.executable, "-m", "benchmarks.run", "--quick", "--processes", "3", "--no-memory"]
    command += ["--cases", "lambda", "--output", str(tmp_path)]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr

    assert "in each of 3 processes: times the median of theirs, ratios the median of their ratios" in done.stdout
    results = json.loads((tmp_path / "latest.json").read_text())
    assert results["settings"]["processes"] == 3
    [case] = results["cases"]
    for op in ("dumps", "loads", "first loads"):
        timing = case["ops"][op]
        for library, medians in timing["process_medians_seconds"].items():
            assert len(medians) == 3
            assert timing["median_seconds"][library] == sorted(medians)[1]
            assert len(timing["samples_seconds"][library]) == 3 * results["settings"]["rounds"]


def test_ratios_over_processes_pair_each_process_with_itself():
    from benchmarks import timing

    # Three processes at 3x, 3x (a quarter as fast) and 2.5x: the medians
    # of each library's times taken apart, 2 s and 5 s, would read 2.5x.
    op_timing = {
        "median_seconds": {"flightpickle": 2.0, "cloudpickle": 5.0},
        "process_medians_seconds": {"flightpickle": [1.0, 4.0, 2.0], "cloudpickle": [3.0, 12.0, 5.0]},
    }
    assert timing.ratio(op_timing, "cloudpickle", "flightpickle") == 3.0
    # One process's times alone: the ratio of its medians.
    assert timing.ratio({"median_seconds": {"flightpickle": 2.0, "cloudpickle": 5.0}}, "cloudpickle", "flightpickle") == 2.5
