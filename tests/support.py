"""Shared test helpers: where the repository's build outputs are."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent


def project_version() -> str:
    """The version of the Cargo workspace, which the jar and the wheel share."""
    text = (REPO_ROOT / "Cargo.toml").read_text()
    match = re.search(r'^version = "([^"]+)"', text, re.MULTILINE)
    assert match, "Cargo.toml has no workspace version"
    return match.group(1)


def plugin_jar() -> Path:
    """The built plugin jar; failing, not skipping, when it is missing."""
    jar = Path(
        os.environ.get("FLIGHTPICKLE_JAR")
        or REPO_ROOT / "jvm" / "target" / f"flightpickle-spark-{project_version()}.jar"
    )
    if not jar.is_file():
        pytest.fail(f"plugin jar {jar} is missing: build it with `make jar` (or run `make test`)")
    return jar
