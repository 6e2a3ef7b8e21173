"""The matrix pickles to the same bytes in two fresh interpreters with
different hash seeds and working directories, for every target."""

import pickle
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


def matrix_bytes(target, workdir, seed):
    output = workdir / "out.matrix"
    env = {"PYTHONHASHSEED": str(seed), "PATH": "/usr/bin:/bin"}
    subprocess.run([sys.executable, str(HERE / "matrix_script.py"), target, str(output)],
                   cwd=workdir, env=env, check=True, timeout=120)
    with open(output, "rb") as file:
        return {name: payload for name, (payload, _, _) in pickle.load(file).items()}


@pytest.mark.parametrize("target", ["native", "cloudpickle", "pyspark"])
def test_same_bytes_across_hash_seeds_and_working_directories(target, tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b" / "deeper").mkdir(parents=True)
    first = matrix_bytes(target, tmp_path / "a", seed=1)
    second = matrix_bytes(target, tmp_path / "b" / "deeper", seed=4242)
    differing = sorted(name for name in first if first[name] != second[name])
    assert differing == []
