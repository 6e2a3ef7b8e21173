"""Run sealed Python functions over Arrow record batches in separate processes.

``python -m flightpickle.executor serve --listen unix:///path --workers N``
starts the service (``--listen grpc://HOST:PORT`` or ``grpc+tls://HOST:PORT`` for
its Arrow Flight front); ``connect(uri).map(func, batches, kind=...)``
streams batches through ``func`` there. The protocol, and how it maps onto
Flight ``DoExchange``, is described in ``src/transport/PROTOCOL.md``.
"""

from .client import Client, connect
from .errors import (
    DeadlineError,
    ExecutorError,
    ProtocolError,
    UdfError,
    UnauthenticatedError,
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
    "UnauthenticatedError",
    "UnavailableError",
    "UnknownDigestError",
    "WorkerLostError",
    "connect",
]
