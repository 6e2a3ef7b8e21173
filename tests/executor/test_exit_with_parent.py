"""``serve --exit-with-parent``: a service whose starter dies without stopping it
(a Spark executor killed outright) stops by itself, workers included."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(120)

STARTER = """
import subprocess, sys
service = subprocess.Popen([sys.executable, "-m", "flightpickle.executor", "serve", "--listen", sys.argv[1]]
                           + sys.argv[2:], stdout=subprocess.PIPE, text=True)
print(service.pid, flush=True)
print(service.stdout.readline(), end="", flush=True)
sys.stdin.read()  # until the test kills this process
"""


def alive(pid: int) -> bool:
    """Running, and not a zombie that nobody reaped yet."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


@pytest.fixture
def directory():
    path = Path(tempfile.mkdtemp(prefix="fpx-", dir="/tmp"))  # socket paths must stay short
    yield path
    shutil.rmtree(path, ignore_errors=True)


def start_through_a_starter(directory: Path, *options: str):
    starter = subprocess.Popen(
        [sys.executable, "-c", STARTER, f"unix://{directory}/s.sock", *options],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    service = int(starter.stdout.readline())
    assert "listening" in starter.stdout.readline()
    return starter, service


def wait_until_gone(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    return not alive(pid)


def test_the_service_stops_when_its_starter_is_killed(directory):
    starter, service = start_through_a_starter(directory, "--exit-with-parent")
    starter.kill()
    starter.wait()
    assert wait_until_gone(service, 60), "the service outlived the process that started it"


def test_without_the_option_the_service_keeps_serving(directory):
    starter, service = start_through_a_starter(directory)
    try:
        starter.kill()
        starter.wait()
        time.sleep(1)
        assert alive(service)
    finally:
        os.kill(service, signal.SIGTERM)
        assert wait_until_gone(service, 60)
