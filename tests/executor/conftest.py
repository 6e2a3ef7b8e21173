"""A running executor service per test that asks for one, on a Unix socket in
a fresh directory, stopped (and killed if it must be) when the test ends."""

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

STARTUP_TIMEOUT = 60.0
STOP_TIMEOUT = 30.0


class Service:
    def __init__(self, workers: int, *options: str):
        # Socket paths are limited to about 100 bytes: stay short, under /tmp.
        self.dir = Path(tempfile.mkdtemp(prefix="fpx-", dir="/tmp"))
        self.path = self.dir / "executor.sock"
        self.uri = f"unix://{self.path}"
        command = [sys.executable, "-m", "flightpickle.executor", "serve", "--listen", self.uri]
        command += ["--workers", str(workers), *options]
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self._wait_until_listening()

    def _wait_until_listening(self) -> None:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not self.path.exists():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                pytest.fail(f"the executor did not start: {self.process.stderr.read()}")
            time.sleep(0.02)

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            # Its workers notice that their parent is gone and exit too.
            self.process.kill()
            self.process.wait()
        shutil.rmtree(self.dir, ignore_errors=True)
        return self.process.returncode


@pytest.fixture
def start_service():
    """``start_service(workers, *cli_options)``: a running service."""
    started: list[Service] = []

    def start(workers: int = 1, *options: str) -> Service:
        service = Service(workers, *options)
        started.append(service)
        return service

    yield start
    for service in started:
        service.stop()


@pytest.fixture(scope="module")
def service():
    """One single-worker service shared by a module's tests."""
    running = Service(1)
    yield running
    running.stop()
