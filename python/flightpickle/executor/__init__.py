"""Run sealed Python functions over Arrow record batches in separate processes.

``python -m flightpickle.executor serve --listen unix:///path --workers N``
starts the service; ``connect("unix:///path").map(func, batches, kind=...)``
streams batches through ``func`` there. The protocol is described in
``src/transport/PROTOCOL.md``. Only the local transport (a Unix socket) exists
so far.
"""

from .client import Client, connect
from .errors import (
    DeadlineError,
    ExecutorError,
    ProtocolError,
    UdfError,
    UnavailableError,
    UnknownDigestError,
    WorkerLostError,
)

__all__ = [
    "Client",
    "DeadlineError",
    "ExecutorError",
    "ProtocolError",
    "UdfError",
    "UnavailableError",
    "UnknownDigestError",
    "WorkerLostError",
    "connect",
]
