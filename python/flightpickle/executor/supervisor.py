"""The executor service's parent process: it binds the endpoint, keeps N
worker processes serving it, replaces any that dies, and shuts them down
gracefully.

All workers accept on the one listening socket they inherit, so the kernel
hands each new stream to an idle worker and the parent never touches the data.

A ``grpc://`` service puts its workers' socket in a private directory and
runs the Arrow Flight front (Rust, ``_native.FlightFront``) in this process:
the front forwards each call to a worker over that socket, so the workers,
their function caches, deadlines and replacement are the local service's.
"""

from __future__ import annotations

import os
import selectors
import signal
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from .. import _native
from .settings import Settings

#: Seconds between looks at the workers.
POLL = 0.1
#: Seconds to answer streams still queued at shutdown.
DRAIN_WAIT = 0.05
#: Seconds the first workers have to start before the service gives up.
STARTUP_TIMEOUT = 120.0
FLIGHT_SCHEMES = ("grpc://", "grpc+tls://")


@dataclass(frozen=True)
class FlightOptions:
    """The Flight front's bearer token and TLS identity (PEM), each optional."""

    token: str | None = None
    tls_cert: bytes | None = None
    tls_key: bytes | None = None

    def any(self) -> bool:
        return any(value is not None for value in (self.token, self.tls_cert, self.tls_key))


def flight_address(uri: str) -> tuple[str, int, bool]:
    """``(host, port, tls)`` of a ``grpc://host:port`` or ``grpc+tls://host:port`` URI."""
    scheme, _, rest = uri.partition("://")
    host, colon, port = rest.rpartition(":")
    if scheme not in ("grpc", "grpc+tls") or not colon or not host or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"expected grpc://host:port or grpc+tls://host:port, got {uri!r}")
    return host.strip("[]"), int(port), scheme == "grpc+tls"


def unix_path(uri: str) -> Path:
    """The socket path of a ``unix:///path`` URI."""
    prefix = "unix://"
    if not uri.startswith(prefix) or not uri[len(prefix) :].startswith("/"):
        raise ValueError(f"expected unix:///absolute/path, got {uri!r}")
    return Path(uri[len(prefix) :])


def remove_stale_socket(path: Path) -> None:
    """Removes a socket file nobody listens on; refuses to touch anything else."""
    if not path.exists():
        return
    if not path.is_socket():
        raise FileExistsError(f"{path} exists and is not a socket")
    probe = socket.socket(socket.AF_UNIX)
    try:
        probe.connect(str(path))
    except ConnectionRefusedError:
        path.unlink()
        return
    finally:
        probe.close()
    raise FileExistsError(f"a service already listens on {path}")


class Supervisor:
    def __init__(self, path: Path, workers: int, settings: Settings, log=sys.stderr):
        if workers < 1:
            raise ValueError("--workers must be at least 1")
        self.path = path
        self.count = workers
        self.settings = settings
        self.log = log
        self.stopping = False
        self.listener = None
        self.workers: list[subprocess.Popen] = []
        self.replaced = 0
        #: With exit_with_parent: the process whose exit stops the service.
        self.parent: int | None = None

    def start(self) -> None:
        remove_stale_socket(self.path)
        self.listener = _native.Listener.bind(str(self.path), body_limit=self.settings.body_limit)
        ready_read, ready_write = os.pipe()
        try:
            self.workers = [self._spawn(ready_write) for _ in range(self.count)]
            os.close(ready_write)
            self._wait_until_ready(ready_read)
        finally:
            os.close(ready_read)

    def _wait_until_ready(self, ready_read: int) -> None:
        """Returns once every first worker accepts: each writes one byte."""
        deadline = time.monotonic() + STARTUP_TIMEOUT
        ready = 0
        with selectors.DefaultSelector() as selector:
            selector.register(ready_read, selectors.EVENT_READ)
            while ready < self.count:
                left = deadline - time.monotonic()
                if left <= 0 or not selector.select(left):
                    raise RuntimeError(f"only {ready} of {self.count} workers started within {STARTUP_TIMEOUT:g} s")
                got = os.read(ready_read, self.count)
                if not got:
                    raise RuntimeError(f"workers exited while starting ({ready} of {self.count} started)")
                ready += len(got)

    def _spawn(self, ready_fd: int | None = None) -> subprocess.Popen:
        fd = self.listener.fileno()
        command = [sys.executable, "-m", "flightpickle.executor", "worker", "--fd", str(fd)]
        command += ["--settings", self.settings.to_json()]
        if ready_fd is None:
            return subprocess.Popen(command, pass_fds=(fd,))
        return subprocess.Popen(command + ["--ready-fd", str(ready_fd)], pass_fds=(fd, ready_fd))

    def watch(self) -> None:
        """Replaces dead workers until asked to stop."""
        while not self.stopping:
            if self.parent is not None and os.getppid() != self.parent:
                print("executor: the process that started the service exited; stopping", file=self.log)
                self.stopping = True
                return
            for i, worker in enumerate(self.workers):
                status = worker.poll()
                if status is not None and not self.stopping:
                    print(f"executor: worker {worker.pid} exited with {status}; starting another", file=self.log)
                    self.workers[i] = self._spawn()
                    self.replaced += 1
            time.sleep(POLL)

    def shutdown(self) -> None:
        """Lets workers finish their streams, then refuses what is still queued."""
        for worker in self.workers:
            if worker.poll() is None:
                worker.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self.settings.shutdown_grace
        for worker in self.workers:
            try:
                worker.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()
        if self.listener is not None:  # else the path may be another service's
            self._refuse_queued()
            self.path.unlink(missing_ok=True)

    def _refuse_queued(self) -> None:
        while (conn := self.listener.accept(DRAIN_WAIT)) is not None:
            try:
                conn.send_status("unavailable", "the executor service is shutting down", 1.0)
            except _native.TransportError:
                pass
            conn.close()


def serve(
    uri: str,
    workers: int,
    settings: Settings,
    flight: FlightOptions = FlightOptions(),
    exit_with_parent: bool = False,
) -> None:
    """Serves until SIGTERM or SIGINT; with ``exit_with_parent``, also until the
    process that started it exits (a Spark executor killed without a chance to
    stop it must not leave its service behind)."""
    parent = os.getppid() if exit_with_parent else None
    if not uri.startswith(FLIGHT_SCHEMES):
        if flight.any():
            raise ValueError("a token and TLS are for grpc:// and grpc+tls:// services")
        _serve(Supervisor(unix_path(uri), workers, settings), parent, lambda: uri, lambda: None)
        return
    host, port, tls = flight_address(uri)
    if tls != (flight.tls_cert is not None and flight.tls_key is not None):
        raise ValueError("grpc+tls:// needs --tls-cert and --tls-key, and grpc:// takes neither")
    private = Path(tempfile.mkdtemp(prefix="fpx-flight-", dir="/tmp"))  # mode 0700: only this user's workers
    supervisor = Supervisor(private / "workers.sock", workers, settings)
    fronts = []

    def start_front() -> str:
        front = _native.FlightFront.start(
            host,
            port,
            str(supervisor.path),
            body_limit=settings.body_limit,
            idle_timeout=settings.idle_timeout,
            token=flight.token,
            tls_cert=flight.tls_cert,
            tls_key=flight.tls_key,
        )
        fronts.append(front)
        shown = f"[{host}]" if ":" in host else host
        return f"{'grpc+tls' if tls else 'grpc'}://{shown}:{front.port}"

    def stop_front() -> None:
        # Before the workers: the calls still in flight need them to finish.
        for front in fronts:
            if not front.shutdown(settings.shutdown_grace):
                print("executor: some Flight calls outlived the shutdown grace and were cut off", file=sys.stderr)

    try:
        _serve(supervisor, parent, start_front, stop_front)
    finally:
        shutil.rmtree(private, ignore_errors=True)


def _serve(supervisor: Supervisor, parent: int | None, start_front, stop_front) -> None:
    """Runs the workers, then the front (which names the endpoint), until a signal
    (or until ``parent``, when given, is no longer this process's parent)."""
    supervisor.parent = parent

    def stop(*_):
        supervisor.stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        supervisor.start()
        uri = start_front()
    except BaseException:
        supervisor.stopping = True
        stop_front()
        supervisor.shutdown()
        raise
    print(f"executor: listening on {uri} with {supervisor.count} worker(s), pid {os.getpid()}", flush=True)
    try:
        supervisor.watch()
    finally:
        stop_front()
        supervisor.shutdown()
