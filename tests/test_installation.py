"""The venv holds the package, its native core and its command, all of one version."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from support import project_version


def test_native_core_matches_the_workspace_version():
    from flightpickle import _native

    assert _native.core_version() == project_version()


def test_flightpickle_command_reports_versions():
    command = Path(sys.executable).parent / "flightpickle"
    result = subprocess.run([command, "--version"], capture_output=True, text=True, check=True)
    version = project_version()
    assert result.stdout.startswith(f"flightpickle {version} (native core {version}, cpython ")


def test_flightpickle_command_rejects_unknown_arguments():
    command = Path(sys.executable).parent / "flightpickle"
    result = subprocess.run([command, "--no-such-flag"], capture_output=True, text=True)
    assert result.returncode == 2
    assert "unrecognized arguments: --no-such-flag" in result.stderr
