"""The executor benchmark still runs end to end in its quick mode and reports
every measure. It judges no timing: a benchmark is not a test."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent.parent
pytestmark = pytest.mark.timeout(600)


def test_quick_run_reports_every_measure(tmp_path):
    out = tmp_path / "executor.json"
    command = [sys.executable, "-m", "benchmarks.executor", "--quick", "--json", str(out)]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=540)
    assert done.returncode == 0, done.stderr
    results = json.loads(out.read_text())
    assert {
        "executor_vs_raw",
        "round_trip_1000_rows_p50_us",
        "row_wise_plus_one_rows_per_s",
        "scaling_2_vs_1_workers",
        "control_plain_processes_2_vs_1",
        "flight_vs_raw",
        "flight_round_trip_1000_rows_p50_us",
        "flight_row_wise_plus_one_rows_per_s",
    } <= set(results)
    verdicts = results.pop("verdicts")
    assert all(value is None or value > 0 for value in results.values())
    assert "executor_vs_raw" in done.stdout
    # One verdict per target the run measures, each met or missed, printed too.
    for target in ("local throughput", "round trip, 1,000 rows", "2 workers vs 1"):
        [line] = [line for line in verdicts if line.startswith(target)]
        assert line.endswith((")", "met", "missed")) and ("met" in line or "missed" in line), line
        assert line in done.stdout


def test_the_parts_of_a_round_trip_run_in_quick_mode():
    command = [sys.executable, "-m", "benchmarks.executor_parts", "--quick"]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=540)
    assert done.returncode == 0, done.stderr
    for part in ("send_batch", "recv_batch", "scalar_pandas_step", "plain socket echo", "service, map_arrow"):
        assert part in done.stdout, done.stdout


def test_the_worker_placements_run_in_quick_mode():
    command = [sys.executable, "-m", "benchmarks.executor_placement", "--quick"]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=540)
    assert done.returncode == 0, done.stderr
    for placement in ("forked", "fresh", "template"):
        for kind in ("scalar_pandas", "map_arrow"):
            assert f"{placement:9} {kind:14}" in done.stdout, done.stdout
    assert "the workers, as /proc shows them" in done.stdout, done.stdout
