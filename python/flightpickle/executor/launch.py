"""Starting a service as a child process and waiting until it serves, for
tests, benchmarks and programs that run their own executor."""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

STARTUP_TIMEOUT = 120.0
STOP_TIMEOUT = 30.0


class LocalService:
    """``python -m flightpickle.executor serve`` on a socket in a fresh
    directory under /tmp (socket paths must stay short); a context manager.

    ``listen`` serves another endpoint instead (``grpc://127.0.0.1:0`` for
    the Flight front on any free port); ``uri`` is then what the service
    says it listens on."""

    def __init__(self, workers: int = 1, *options: str, stderr=None, listen: str | None = None, env=None):
        self.dir = Path(tempfile.mkdtemp(prefix="fpx-", dir="/tmp"))
        self.path = self.dir / "executor.sock"
        self.uri = listen or f"unix://{self.path}"
        command = [sys.executable, "-m", "flightpickle.executor", "serve", "--listen", self.uri]
        command += ["--workers", str(workers), *options]
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=stderr, text=True, env=env)
        self.uri = self._wait_until_listening()

    def _wait_until_listening(self) -> str:
        # The service prints its first line once every worker accepts.
        line: list[str] = []
        reader = threading.Thread(target=lambda: line.append(self.process.stdout.readline()), daemon=True)
        reader.start()
        reader.join(STARTUP_TIMEOUT)
        said = re.search(r"listening on (\S+) ", line[0]) if line else None
        if said is None:
            self.stop()
            raise RuntimeError(f"the executor service did not start (said {line[0] if line else 'nothing'!r})")
        return said.group(1)

    def stop(self) -> int:
        """SIGTERM (a graceful shutdown), then SIGKILL after STOP_TIMEOUT."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            # Its workers notice that their parent is gone and exit too.
            self.process.kill()
            self.process.wait()
        self.process.stdout.close()
        shutil.rmtree(self.dir, ignore_errors=True)
        return self.process.returncode

    def __enter__(self) -> LocalService:
        return self

    def __exit__(self, *_) -> None:
        self.stop()
