"""Exceptions of the executor client, one per way a stream can end badly."""

from __future__ import annotations


class ExecutorError(Exception):
    """A stream failed; ``code`` is the protocol's status name (``PROTOCOL.md``)."""

    code = "error"

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class UdfError(ExecutorError):
    """The function raised, or its result did not convert; ``message`` is the traceback."""

    code = "udf_error"


class ProtocolError(ExecutorError):
    """One side broke the protocol: malformed frame, wrong order, schema mismatch, bad envelope."""

    code = "protocol_error"


class UnknownDigestError(ExecutorError):
    """The service did not have the function and was not sent it."""

    code = "unknown_digest"


class DeadlineError(ExecutorError):
    """An idle or total deadline passed."""

    code = "deadline"


class UnavailableError(ExecutorError):
    """The service is shutting down and took no new stream."""

    code = "unavailable"


class WorkerLostError(ExecutorError):
    """The connection closed without a status: the worker serving it died."""

    code = "worker_lost"


class UnauthenticatedError(ExecutorError):
    """The Flight service wants a bearer token, and got none or another one."""

    code = "unauthenticated"


BY_CODE = {
    cls.code: cls
    for cls in (UdfError, ProtocolError, UnknownDigestError, DeadlineError, UnavailableError, WorkerLostError)
}


class StreamFailure(Exception):
    """Raised inside the service to end a stream with a status other than ok."""

    def __init__(self, code: str, message: str):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
