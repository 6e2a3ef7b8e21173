"""Helpers for the pickler tests: loading in a fresh interpreter.

A fresh interpreter (``python -I``) has neither these test modules nor the
current directory on its path, so it can only load what travelled by value.
"""

import pickle
import subprocess
import sys
import textwrap

import pytest

LOADER = """
import pickle, sys
obj = pickle.loads(sys.stdin.buffer.read())
{check}
sys.stdout.buffer.write(pickle.dumps(result, protocol=2))
"""


def _run_python(code, stdin=b""):
    """Run ``code`` as ``__main__`` of a fresh interpreter; return its stdout."""
    proc = subprocess.run(
        [sys.executable, "-I", "-c", textwrap.dedent(code)],
        input=stdin,
        capture_output=True,
        timeout=120,
    )
    if proc.returncode != 0:
        raise AssertionError(f"fresh interpreter failed:\n{proc.stderr.decode()}")
    return proc.stdout


def _load_fresh(payload, check="result = obj"):
    """Load ``payload`` with plain ``pickle.loads`` in a fresh interpreter,
    run ``check`` (which sees ``obj`` and sets ``result``, plain data) and
    return ``result``."""
    script = LOADER.format(check=textwrap.dedent(check))
    return pickle.loads(_run_python(script, stdin=payload))


@pytest.fixture(params=[2, 5], ids=["proto2", "proto5"])
def protocol(request):
    return request.param


@pytest.fixture(name="load_fresh")
def load_fresh_fixture():
    return _load_fresh


@pytest.fixture(name="run_python")
def run_python_fixture():
    return _run_python
