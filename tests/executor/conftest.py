"""A running executor service for tests that ask for one, on a Unix socket in
a fresh directory, stopped (and killed if it must be) when they end."""

from __future__ import annotations

import subprocess

import pytest

from flightpickle.executor.launch import LocalService


@pytest.fixture
def start_service():
    """``start_service(workers, *cli_options, listen=..., env=...)``: a running service."""
    started: list[LocalService] = []

    def start(workers: int = 1, *options: str, **launch) -> LocalService:
        service = LocalService(workers, *options, stderr=subprocess.DEVNULL, **launch)
        started.append(service)
        return service

    yield start
    for service in started:
        service.stop()


@pytest.fixture(scope="module")
def service():
    """One single-worker service shared by a module's tests."""
    with LocalService(1, stderr=subprocess.DEVNULL) as running:
        yield running
