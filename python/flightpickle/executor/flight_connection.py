"""One Arrow Flight ``DoExchange`` call that behaves like a local connection
(``_native.Connection``): the same ``send_*`` methods and ``recv`` tuples, so
the client's stream logic serves both transports unchanged.

It speaks the mapping in ``src/transport/PROTOCOL.md`` ("Over Arrow Flight")
through ``pyarrow.flight``: pyarrow is already required, its gRPC client runs
the network I/O in C++ without the interpreter lock, and it shows that a
plain pyarrow client is all a caller needs.
"""

from __future__ import annotations

import base64
import json
import struct
import threading
import time

import pyarrow as pa
import pyarrow.flight as flight

from .errors import (
    BY_CODE,
    DeadlineError,
    ExecutorError,
    ProtocolError,
    UnauthenticatedError,
    UnavailableError,
    WorkerLostError,
)

PROTOCOL_VERSION = 1
# The first byte of app_metadata: the local protocol's frame kinds.
NEED_BODY, BODY, READY, BATCH, ACK, END, STATUS = 2, 3, 4, 5, 6, 7, 8
#: A message only Flight has, sent just before the status when the open
#: document asks for ``stats``: the service's measurements of the stream.
STATS = 9
STATS_FIELDS = struct.Struct("<QB")
STATUS_NAMES = ("ok", "udf_error", "protocol_error", "unknown_digest", "deadline", "unavailable", "worker_lost")
SEQUENCE = struct.Struct("<Q")


def tagged(kind: int, value: int) -> bytes:
    return bytes([kind]) + SEQUENCE.pack(value)


def open_document(kind, digest, output_schema, window, row_errors, group_keys, body_follows=False) -> bytes:
    """The JSON the descriptor's command carries to open a stream."""
    document = {
        "body_follows": body_follows,
        "stats": True,
        "version": PROTOCOL_VERSION,
        "kind": kind,
        "digest": digest,
        "window": window,
        "row_errors": row_errors,
        "group_keys": list(group_keys),
        "output_schema": base64.b64encode(output_schema.serialize().to_pybytes()).decode("ascii"),
    }
    return json.dumps(document).encode()


def parse_reply(chunk, stats: dict | None = None) -> tuple:
    """A reply chunk as the tuple ``_native.Connection.recv`` would give;
    ``stats``, from a ``Stats`` message before it, go with a status."""
    meta = chunk.app_metadata.to_pybytes() if chunk.app_metadata is not None else b""
    if not meta:
        raise ProtocolError("the executor sent a message without app_metadata")
    kind = meta[0]
    if kind == BATCH and chunk.data is not None:
        return ("batch", SEQUENCE.unpack(meta[1:])[0], chunk.data)
    if kind in (NEED_BODY, READY) and len(meta) == 1:
        return ("need_body",) if kind == NEED_BODY else ("ready",)
    if kind == ACK and len(meta) == 9:
        return ("ack", SEQUENCE.unpack(meta[1:])[0])
    if kind == STATUS and len(meta) >= 2 and meta[1] < len(STATUS_NAMES):
        return ("status", STATUS_NAMES[meta[1]], meta[2:].decode("utf-8", "replace"), stats)
    if kind == STATS and len(meta) >= 1 + STATS_FIELDS.size and meta[1 + 8] in (0, 1):
        nanos, cached = STATS_FIELDS.unpack_from(meta, 1)
        return ("stats", {"function_nanos": nanos, "function_cached": bool(cached)})
    raise ProtocolError(f"the executor sent a message this client does not understand (app_metadata {meta[:16]!r})")


def translate(error: Exception, expired: bool) -> ExecutorError:
    """The client's error for a gRPC failure that came without a status message."""
    message = str(error)
    ended_by_front = status_in_grpc_message(message)
    if ended_by_front is not None and not expired:
        return ended_by_front
    if expired or isinstance(error, flight.FlightTimedOutError):
        return DeadlineError(f"no answer from the executor in time: {message}")
    if isinstance(error, flight.FlightUnauthenticatedError):
        return UnauthenticatedError(message)
    if isinstance(error, flight.FlightUnavailableError):
        return UnavailableError(message)
    if isinstance(error, pa.ArrowInvalid):
        return ProtocolError(message)
    if isinstance(error, flight.FlightCancelledError):
        return WorkerLostError(f"the call was cancelled: {message}")
    return ExecutorError(message)


# How pyarrow words a failed call: its prefix, then the gRPC status message,
# then the gRPC library's own context.
PYARROW_PREFIX = "Flight RPC failed with message: "
GRPC_CONTEXT = ". gRPC client debug context:"


def status_in_grpc_message(message: str) -> ExecutorError | None:
    """The error a ``Status`` message would have raised, read from the gRPC
    status the front ends a failed call with (``<status name>: <message>``,
    PROTOCOL.md). The front sends both, the message first, but gRPC can
    deliver the call's end without the message just before it when the
    server finishes while the client is still sending; None when the text
    is not the front's."""
    if not message.startswith(PYARROW_PREFIX):
        return None
    text = message[len(PYARROW_PREFIX) :]
    end = text.rfind(GRPC_CONTEXT)
    if end >= 0:
        text = text[:end].removesuffix("\n")
    code, separator, detail = text.partition(": ")
    error_class = BY_CODE.get(code)
    if not separator or error_class is None:
        return None
    return error_class(detail)


class Watchdog:
    """Cancels the call when a ``recv`` waits longer than its timeout:
    pyarrow's reads have no timeout of their own. Arming is two attribute
    writes; the thread wakes only at deadlines."""

    def __init__(self, cancel):
        self.cancel = cancel
        self.deadline: float | None = None
        self.expired = False
        self.closed = threading.Event()
        self.thread = threading.Thread(target=self._watch, name="flightpickle-flight-watchdog", daemon=True)
        self.thread.start()

    def arm(self, timeout: float) -> None:
        self.deadline = time.monotonic() + timeout

    def disarm(self) -> None:
        self.deadline = None

    def close(self) -> None:
        self.closed.set()

    def _watch(self) -> None:
        wait = 1.0
        while not self.closed.wait(wait):
            deadline = self.deadline
            if deadline is None:
                wait = 1.0
                continue
            wait = deadline - time.monotonic()
            if wait <= 0:
                self.expired = True
                self.cancel()
                return


class FlightConnection:
    def __init__(self, client: flight.FlightClient, options: flight.FlightCallOptions, body_limit: int):
        self.client = client
        self.options = options
        self.body_limit = body_limit
        self.writer = None
        self.reader = None
        self.write_lock = threading.Lock()
        self.watchdog: Watchdog | None = None
        self.closed = False

    def send_open(self, *, kind, digest, input_schema, output_schema, window, row_errors, group_keys, envelope, timeout):
        """Opens the call; with ``envelope``, the sealed function follows the
        input schema at once (``body_follows``) and no NeedBody comes back."""
        command = open_document(kind, digest, output_schema, window, row_errors, group_keys, envelope is not None)
        try:
            self.writer, self.reader = self.client.do_exchange(flight.FlightDescriptor.for_command(command), self.options)
            self.watchdog = Watchdog(self.reader.cancel)
            # The input schema message carries the descriptor: the Open.
            self.writer.begin(input_schema)
            if envelope is not None:
                self.writer.write_metadata(bytes([BODY]) + envelope)
        except (flight.FlightError, pa.ArrowException) as error:
            raise translate(error, False) from None

    def send_body(self, envelope: bytes, timeout: float) -> None:
        self._write(lambda: self.writer.write_metadata(bytes([BODY]) + envelope))

    def send_batch(self, seq: int, batch: pa.RecordBatch, timeout: float) -> None:
        self._write(lambda: self.writer.write_with_metadata(batch, tagged(BATCH, seq)))

    def send_end(self, count: int, timeout: float) -> None:
        def end():
            self.writer.write_metadata(tagged(END, count))
            self.writer.done_writing()

        self._write(end)

    def _write(self, operation) -> None:
        with self.write_lock:
            if self.closed:
                raise WorkerLostError("the stream was closed")
            try:
                operation()
            except (flight.FlightError, pa.ArrowException) as error:
                raise translate(error, False) from None

    def recv(self, timeout: float) -> tuple:
        """The next message; a ``Stats`` message is folded into the status after it."""
        reply = self._recv_one(timeout)
        if reply[0] != "stats":
            return reply
        status = self._recv_one(timeout, stats=reply[1])
        if status[0] != "status":
            raise ProtocolError(f"the executor sent stats followed by {status[0]}, not the status")
        return status

    def _recv_one(self, timeout: float, stats: dict | None = None) -> tuple:
        self.watchdog.arm(timeout)
        try:
            chunk = self.reader.read_chunk()
        except StopIteration:
            raise WorkerLostError("the executor ended the call without a status") from None
        except flight.FlightCancelledError as error:
            if self.watchdog.expired:
                raise translate(error, True) from None
            # gRPC cancels the call, with no message, when a reply is over the
            # receive limit; the service may cancel it too: name both causes.
            raise WorkerLostError(
                f"the call was cancelled, by the service or because a reply was larger than this client's "
                f"body_limit of {self.body_limit} bytes: {error}"
            ) from None
        except (flight.FlightError, pa.ArrowException) as error:
            raise translate(error, self.watchdog.expired) from None
        finally:
            self.watchdog.disarm()
        return parse_reply(chunk, stats)

    def close(self) -> None:
        """Ends the call: cancels it unless it already ended, then releases it."""
        if self.closed or self.reader is None:
            self.closed = True
            return
        self.reader.cancel()
        self.watchdog.close()
        with self.write_lock:
            self.closed = True
            try:
                self.writer.close()
            except (flight.FlightError, pa.ArrowException):
                pass  # the cancellation, or the failure already reported
