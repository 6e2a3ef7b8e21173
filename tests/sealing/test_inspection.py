"""Inspection lists what a payload imports and calls without running any of it."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import flightpickle

NOTEBOOK_UDF = '''
import pickle, sys, math, colorsys
import flightpickle

THRESHOLD = 0.5

def brightness(r, g, b):
    return colorsys.rgb_to_hls(r, g, b)[1]

def make_udf(scale):
    def udf(r, g, b):
        return math.floor(brightness(r, g, b) * scale) > THRESHOLD
    return udf

sys.stdout.buffer.write(flightpickle.seal(make_udf(10)) if sys.argv[1] == "sealed"
                        else flightpickle.dumps(make_udf(10)))
'''


def notebook_payload(tmp_path: Path, kind: str) -> Path:
    """A UDF written in a script's __main__, the way a notebook cell defines it."""
    data = subprocess.run(
        [sys.executable, "-c", NOTEBOOK_UDF, kind], capture_output=True, check=True
    ).stdout
    path = tmp_path / f"udf.{kind}"
    path.write_bytes(data)
    return path


def run_inspect(*args) -> subprocess.CompletedProcess:
    command = Path(sys.executable).parent / "flightpickle"
    return subprocess.run([command, "inspect", *map(str, args)], capture_output=True, text=True)


def test_notebook_udf_lists_its_modules_globals_and_functions(tmp_path):
    for kind in ("plain", "sealed"):
        result = run_inspect("--json", notebook_payload(tmp_path, kind))
        assert result.returncode == 0, result.stderr
        found = json.loads(result.stdout)
        # math and colorsys are imported by name on load; flightpickle's reconstructors too.
        assert {"math", "colorsys", "flightpickle"} <= set(found["modules"]), found
        assert "flightpickle._new_function" in found["calls"]
        names = sorted(item["name"] for item in found["by_value"] if item["kind"] == "function")
        assert names == ["brightness", "make_udf.<locals>.udf"], found["by_value"]
        assert all(item["bytes"] > 100 for item in found["by_value"])
        assert (found["sealed"] is not None) == (kind == "sealed")


def test_inspection_runs_nothing(tmp_path):
    marker = tmp_path / "ran"
    payload = b"cos\nsystem\n(S'touch " + str(marker).encode() + b"'\ntR."
    path = tmp_path / "hostile.pkl"
    path.write_bytes(payload)
    result = run_inspect(path)
    assert result.returncode == 0, result.stderr
    assert "os.system" in result.stdout
    assert "modules imported on load (1):\n  os" in result.stdout
    assert not marker.exists()


def test_module_missing_here_is_still_listed():
    payload = b"\x80\x04\x8c\x12not_installed_here\x94\x8c\x04func\x94\x93\x94)R\x94."
    found = flightpickle.inspect_payload(payload)
    assert found.modules == ["not_installed_here"]
    assert found.calls == {"not_installed_here.func": 1}


def test_table_names_the_sealed_header(tmp_path):
    result = run_inspect(notebook_payload(tmp_path, "sealed"))
    assert "sealed by flightpickle" in result.stdout
    assert "target native, not signed" in result.stdout
    assert "function" in result.stdout and "make_udf.<locals>.udf" in result.stdout


def test_unreadable_input_is_a_clear_error(tmp_path):
    path = tmp_path / "junk"
    path.write_bytes(b"\x80\x05\xff not a pickle")
    result = run_inspect(path)
    assert result.returncode == 1
    assert "not a readable pickle: at byte 2: unknown opcode 0xff" in result.stderr
    assert run_inspect(tmp_path / "missing").returncode == 1


def test_out_of_band_buffers_are_counted():
    payload = pickle.dumps(pickle.PickleBuffer(b"abc"), protocol=5, buffer_callback=lambda b: False)
    assert flightpickle.inspect_payload(payload).out_of_band_buffers == 1


def test_payload_can_come_from_stdin(tmp_path):
    command = Path(sys.executable).parent / "flightpickle"
    payload = notebook_payload(tmp_path, "sealed").read_bytes()
    result = subprocess.run([command, "inspect", "--json", "-"], input=payload, capture_output=True)
    assert result.returncode == 0, result.stderr
    assert "colorsys" in json.loads(result.stdout)["modules"]


def test_reader_gone_is_not_an_error(tmp_path):
    """`flightpickle inspect FILE | head` must not end in a BrokenPipeError traceback."""
    command = Path(sys.executable).parent / "flightpickle"
    path = notebook_payload(tmp_path, "sealed")
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader has already gone: every write fails with EPIPE
    try:
        result = subprocess.run(
            [command, "inspect", path], stdout=write_end, stderr=subprocess.PIPE, timeout=60
        )
    finally:
        os.close(write_end)
    assert result.returncode == 0
    assert b"Traceback" not in result.stderr, result.stderr
