"""The README's first command, `make demo`, works and tells the truth."""

from __future__ import annotations

import os
import re
import subprocess

import pytest

from support import REPO_ROOT

pytestmark = pytest.mark.spark


def test_make_demo_runs_the_udfs_on_two_executors():
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAKE")}
    result = subprocess.run(
        ["make", "--no-print-directory", "demo"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    output = result.stdout
    assert result.returncode == 0, output[-3000:] + result.stderr[-3000:]
    assert "rows checked against local results: 1000, all match" in output
    assert "flightpickle enabled by the plugin: True" in output
    assert re.search(r"computed by executor JVMs: 0, 1$", output, re.MULTILINE), output
    assert re.search(r"native core loaded by the plugin in: executor 0 \(.*\), executor 1 \(", output)
    assert "demo OK" in output
