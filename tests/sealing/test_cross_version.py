"""Payloads that cross CPython minor versions, between the repository's two
built interpreters (`.venv` and `.venv312`): a function's code object only
loads on the version that wrote it, so a sealed one is refused on another with
the version mismatch error, before anything is unpickled, and a plain pickle
of one is refused when its code would be made (its bytecode would crash the
other version); plain data loads on either. Skipped unless the other interpreter is built too (`make
test-python312` builds the second)."""

import pickle
import subprocess
import sys

import pytest

import flightpickle
from flightpickle import sealing
from support import REPO_ROOT

INTERPRETERS = [REPO_ROOT / ".venv" / "bin" / "python", REPO_ROOT / ".venv312" / "bin" / "python"]

WRITE = """
import sys, flightpickle
scale = 3
payloads = {
    "function": flightpickle.seal(lambda x: x * scale),
    "plain function": flightpickle.dumps(lambda x: x * scale),
    "sealed data": flightpickle.seal({"rows": [1, 2.5, "three", None], "shape": (2, 2)}),
    "data": flightpickle.dumps({"rows": [1, 2.5, "three", None], "shape": (2, 2)}),
}
sys.stdout.buffer.write(flightpickle.dumps(payloads, protocol=2))
"""


def minor_version(python):
    done = subprocess.run([str(python), "-I", "-c", "import sys, flightpickle; print(*sys.version_info[:2])"],
                          capture_output=True, timeout=120)
    return tuple(map(int, done.stdout.split())) if done.returncode == 0 else None


def other_interpreter():
    """An interpreter of another minor version than this one, with flightpickle."""
    this = sys.version_info[:2]
    for python in INTERPRETERS:
        if python.exists() and minor_version(python) not in (None, this):
            return python
    pytest.skip("no other CPython minor version with flightpickle built beside this one")


@pytest.fixture(scope="module")
def written_elsewhere():
    """The payloads of WRITE, and the version that wrote them."""
    python = other_interpreter()
    done = subprocess.run([str(python), "-I", "-c", WRITE], capture_output=True, check=True, timeout=120)
    return pickle.loads(done.stdout), minor_version(python)


def test_a_function_sealed_on_another_version_is_refused_naming_both(written_elsewhere):
    payloads, (major, minor) = written_elsewhere
    this = "{}.{}".format(*sys.version_info[:2])
    with pytest.raises(sealing.PythonVersionMismatchError,
                       match=f"pickled on CPython {major}.{minor}, this is CPython {this}"):
        flightpickle.unseal(payloads["function"])


def test_a_plain_function_pickle_of_another_version_is_refused_not_run(written_elsewhere):
    payloads, (major, minor) = written_elsewhere
    this = "{}.{}".format(*sys.version_info[:2])
    with pytest.raises(pickle.UnpicklingError,
                       match=rf"code of <lambda> of Python {major}\.{minor}, .*\(this is {this}\)"):
        flightpickle.loads(payloads["plain function"])


def test_data_crosses_versions(written_elsewhere):
    payloads, _ = written_elsewhere
    expected = {"rows": [1, 2.5, "three", None], "shape": (2, 2)}
    assert pickle.loads(payloads["data"]) == expected
    # The envelope refuses any other version by default: it cannot tell data
    # from code without unpickling.
    with pytest.raises(sealing.PythonVersionMismatchError):
        flightpickle.unseal(payloads["sealed data"])
    assert flightpickle.unseal(payloads["sealed data"], check_python=False) == expected
