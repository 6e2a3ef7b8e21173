"""Virtual environments that have only stock cloudpickle 3.1.2, or only
pyspark 4.3.0 (and its py4j), never flightpickle: where the compatible
targets' pickles are loaded. Made once under target/test-venvs/ (ignored by
git) with the same interpreter as the tests, and reused while valid."""

import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from support import REPO_ROOT

VENVS = REPO_ROOT / "target" / "test-venvs"
PINS = {
    "cloudpickle": ["cloudpickle==3.1.2"],
    "pyspark": ["pyspark==4.3.0", "py4j==0.10.9.9"],
}
CHECK = {
    "cloudpickle": "import cloudpickle; assert cloudpickle.__version__ == '3.1.2'",
    "pyspark": "import pyspark, pyspark.cloudpickle.cloudpickle; assert pyspark.__version__ == '4.3.0'",
}
NO_FLIGHTPICKLE = ("import importlib.util, sys; "
                   "sys.exit(importlib.util.find_spec('flightpickle') is not None)")


def _python(venv):
    return venv / "bin" / "python"


def _valid(venv, target):
    python, pins = _python(venv), venv / "pins.txt"
    if not python.exists() or not pins.exists() or pins.read_text() != " ".join(PINS[target]):
        return False
    for code in (CHECK[target], NO_FLIGHTPICKLE):
        if subprocess.run([str(python), "-I", "-c", code], capture_output=True, timeout=120).returncode:
            return False
    return True


def _create(venv, target):
    base = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base, "-m", "venv", "--clear", "--without-pip", str(venv)],
                   check=True, timeout=120)
    # The tests' pip installs into the new venv: no bootstrap of a pip there.
    subprocess.run([sys.executable, "-m", "pip", "--python", str(_python(venv)), "install",
                    "--quiet", "--disable-pip-version-check", "--no-deps", *PINS[target]],
                   check=True, timeout=900)
    (venv / "pins.txt").write_text(" ".join(PINS[target]))


def stock_python(target):
    # One per minor version: a code object's pickle loads only on the minor
    # version that wrote it, and each interpreter's suite runs against its own.
    venv = VENVS / f"{target}-only-{sysconfig.get_python_version()}"
    if not _valid(venv, target):
        _create(venv, target)
        assert _valid(venv, target), f"{venv} is not a working {target}-only environment"
    return _python(venv)


@pytest.fixture(scope="session")
def stock_pythons():
    """{target: python executable that can load it without flightpickle}."""
    assert sysconfig.get_python_version() == "{}.{}".format(*sys.version_info[:2])
    return {"cloudpickle": stock_python("cloudpickle"), "pyspark": stock_python("pyspark")}
