"""The executor client: seal a function, stream batches through it.

``connect(uri).map(func, batches, ...)`` opens one stream (one connection, or
one Flight call: ``flight_client``) per call: it sends the function's digest
first and the sealed function only when the service asks for it, sends the
batches from a background thread while results are read on the calling thread
(so neither side can block the other), and keeps at most ``window`` batches
unacknowledged.
"""

from __future__ import annotations

import itertools
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator

import pyarrow as pa

from .. import _native, sealing
from .errors import BY_CODE, DeadlineError, ExecutorError, ProtocolError, WorkerLostError
from .kinds import ERROR_COLUMN, KEYED_KINDS
from .settings import DEFAULT_BODY_LIMIT
from .supervisor import FLIGHT_SCHEMES, unix_path

SCALAR_KINDS = ("scalar_row", "scalar_pandas", "scalar_pandas_iter", "grouped_agg_pandas")
ALL_KINDS = SCALAR_KINDS + ("map_arrow", "map_pandas") + tuple(sorted(KEYED_KINDS))
SEALED_CACHE_SIZE = 64
#: Seconds the sender waits for window space before looking at the stop flag.
WINDOW_POLL = 0.1


def connect(
    uri: str,
    *,
    timeout: float = 60.0,
    window: int = 8,
    body_limit: int = DEFAULT_BODY_LIMIT,
    token: str | None = None,
    tls_root_certs: bytes | None = None,
):
    """A client of the executor service at ``uri``: ``unix:///path``, or
    ``grpc://host:port`` / ``grpc+tls://host:port`` for its Arrow Flight front.

    ``body_limit`` is the largest result body the client accepts from the
    service, in bytes, over either transport: over a Unix socket the body of
    one frame, over Flight one gRPC message less the 2 MiB its header may take
    (the allowance the service's Flight front makes too). A larger reply fails
    the stream: with ProtocolError over a Unix socket, over Flight with
    WorkerLostError (gRPC reports it as a cancelled call).

    ``token`` is the Flight service's bearer token; ``tls_root_certs`` (PEM)
    the certificates to trust for ``grpc+tls://`` instead of the system's.
    """
    if uri.startswith(FLIGHT_SCHEMES):
        from .flight_client import FlightClient

        return FlightClient(
            uri, timeout=timeout, window=window, body_limit=body_limit, token=token, tls_root_certs=tls_root_certs
        )
    if token is not None or tls_root_certs is not None:
        raise ValueError("a token and TLS certificates are for grpc:// and grpc+tls:// services")
    return Client(unix_path(uri), timeout=timeout, window=window, body_limit=body_limit)


class Client:
    def __init__(self, path, *, timeout: float, window: int, body_limit: int):
        if window < 1:
            raise ValueError("window must be at least 1")
        if body_limit < 0:
            raise ValueError(f"body_limit is a number of bytes, at least 0, not {body_limit}")
        self.path = path
        self.timeout = timeout
        self.window = window
        self.body_limit = body_limit
        self._sealed: OrderedDict[int, tuple[Callable, bytes, str]] = OrderedDict()

    def map(
        self,
        func: Callable,
        batches: Iterable[pa.RecordBatch],
        *,
        kind: str = "scalar_row",
        return_type: pa.DataType | None = None,
        schema: pa.Schema | None = None,
        group_by: Iterable[str] = (),
        row_errors: bool = False,
    ) -> Iterator[pa.RecordBatch]:
        """Applies ``func`` to ``batches`` on the service; yields the result batches in order.

        Scalar kinds need ``return_type``, the others the output ``schema``.
        The grouped kinds (``grouped_map_pandas``, and ``grouped_map_arrow``
        and ``grouped_map_arrow_iter``, which take a PySpark UDF command
        ``(func, StructType)``) group the input by the ``group_by`` columns
        here first (all of it in memory) and send one batch per group.
        """
        output = self._output_schema(kind, return_type, schema, row_errors)
        group_by = list(group_by)
        if kind in KEYED_KINDS and not group_by:
            raise ValueError(f"{kind} needs group_by columns")
        batches = iter(batches)
        first = next(batches, None)
        if first is None:
            return iter(())
        batches = itertools.chain([first], batches)
        if kind in KEYED_KINDS:
            batches = _groups(pa.Table.from_batches(batches), group_by)
        return self._stream(func, first.schema, output, kind, group_by, row_errors, batches)

    @staticmethod
    def _output_schema(kind, return_type, schema, row_errors) -> pa.Schema:
        if kind not in ALL_KINDS:
            raise ValueError(f"unknown kind {kind!r}; one of {', '.join(ALL_KINDS)}")
        if kind in SCALAR_KINDS:
            if return_type is None:
                raise ValueError(f"{kind} needs return_type")
            fields = [pa.field("result", return_type)]
            if row_errors:
                fields.append(pa.field(ERROR_COLUMN, pa.string()))
            return pa.schema(fields)
        if schema is None:
            raise ValueError(f"{kind} needs the output schema")
        return schema

    def seal(self, func: Callable) -> tuple[bytes, str]:
        """The sealed function and its digest, sealed once per function object."""
        entry = self._sealed.get(id(func))
        if entry is None or entry[0] is not func:
            envelope = sealing.seal(func)
            entry = (func, envelope, sealing.read_header(envelope).digest)
            self._sealed[id(func)] = entry
            while len(self._sealed) > SEALED_CACHE_SIZE:
                self._sealed.popitem(last=False)
        self._sealed.move_to_end(id(func))
        return entry[1], entry[2]

    def _stream(self, func, input_schema, output_schema, kind, group_by, row_errors, batches):
        envelope, digest = self.seal(func)
        conn = self._connect()
        try:
            conn.send_open(
                kind=kind,
                digest=digest,
                input_schema=input_schema,
                output_schema=output_schema,
                window=self.window,
                row_errors=row_errors,
                group_keys=group_by,
                envelope=self._envelope_to_open_with(digest, envelope),
                timeout=self.timeout,
            )
            self._handshake(conn, envelope)
        except _native.TransportError as error:
            # The service may have ended the stream with a status before the
            # write failed (a caller slower than its idle deadline gets a
            # broken pipe here): that status, not the pipe, says what happened.
            status = _status_left_behind(conn, error)
            conn.close()
            if status is None:
                raise
            raise _status_error(status[1], status[2]) from None
        except BaseException:
            conn.close()
            raise
        return _Stream(conn, batches, self.window, self.timeout)

    def _envelope_to_open_with(self, digest: str, envelope: bytes) -> bytes | None:
        """The sealed function to send with the opening, or None to send only
        the digest and the function when the service asks. A local service is
        one hop away: asking costs little, and big functions cross only once
        per worker."""
        return None

    def _connect(self):
        """A new connection to the service, for one stream."""
        return _native.Connection.connect(str(self.path), timeout=self.timeout, body_limit=self.body_limit)

    def _handshake(self, conn, envelope: bytes) -> None:
        reply = _receive(conn, self.timeout)
        if reply[0] == "need_body":
            conn.send_body(envelope, self.timeout)
            reply = _receive(conn, self.timeout)
        if reply[0] == "status":
            raise _status_error(reply[1], reply[2])
        if reply[0] != "ready":
            raise ProtocolError(f"expected ready, got {reply[0]}")


def _groups(table: pa.Table, keys: list[str]) -> Iterator[pa.RecordBatch]:
    ordered = table.sort_by([(key, "ascending") for key in keys]).combine_chunks()
    key_rows = ordered.select(keys).to_pylist()
    start = 0
    for i in range(1, len(key_rows) + 1):
        if i == len(key_rows) or key_rows[i] != key_rows[start]:
            # combine_chunks above: each slice is one chunk, so one batch per group.
            yield from ordered.slice(start, i - start).to_batches()
            start = i


@dataclass(frozen=True)
class StreamStats:
    """What the service measured serving one stream (its final status says).

    ``function_nanos``: time its worker spent in the function (calling it,
    converting its inputs and results), not waiting for this client;
    ``function_cached``: whether the worker had the function already, by its
    digest, rather than opening the sealed function sent to it.
    """

    function_nanos: int
    function_cached: bool

    @classmethod
    def of_status(cls, fields: dict | None) -> StreamStats | None:
        return None if fields is None else cls(fields["function_nanos"], fields["function_cached"])


def _receive(conn, timeout: float) -> tuple:
    try:
        return conn.recv(timeout)
    except _native.TransportError as error:
        kind, message = error.args
        if kind == "timeout":
            raise DeadlineError(f"no answer from the executor for {timeout:g} s") from None
        if kind in ("closed", "io"):
            raise WorkerLostError(f"the executor closed the stream without a status (its worker died?): {message}") from None
        raise ProtocolError(message) from None


def _status_left_behind(conn, error: _native.TransportError) -> tuple | None:
    """The final status the service sent before it closed the connection
    whose write failed with ``error``, or None. Only a peer that is gone
    (``io``, ``closed``) is asked: its last messages are already here or
    never will be, so reading them cannot wait."""
    if error.args[0] not in ("io", "closed"):
        return None
    try:
        while (message := conn.recv(0.001))[0] != "status":
            pass
    except _native.TransportError:
        return None
    return message


def _status_error(code: str, message: str) -> ExecutorError:
    return BY_CODE.get(code, ExecutorError)(message)


class _Stream:
    """The results of one open stream, as an iterator; sends from a thread.

    ``stats`` is what the service measured (``StreamStats``) once its final
    status arrived, if it sent any; None until then.
    """

    def __init__(self, conn, batches, window: int, timeout: float):
        self.conn = conn
        self.stats: StreamStats | None = None
        self.timeout = timeout
        self.credit = threading.Semaphore(window)
        self.stop = threading.Event()
        self.send_error: BaseException | None = None
        self.sender = threading.Thread(target=self._send, args=(batches,), name="flightpickle-executor-send", daemon=True)
        self.sender.start()
        self.results = self._results()

    def __iter__(self):
        return self

    def __next__(self) -> pa.RecordBatch:
        return next(self.results)

    def close(self) -> None:
        """Abandons the stream: the sender stops and the connection closes."""
        self.stop.set()
        self.conn.close()
        self.results.close()

    def __del__(self):
        self.close()

    def _send(self, batches) -> None:
        seq = 0
        try:
            for batch in batches:
                while not self.credit.acquire(timeout=WINDOW_POLL):
                    if self.stop.is_set():
                        return
                if self.stop.is_set():
                    return
                self.conn.send_batch(seq, batch, self.timeout)
                seq += 1
            self.conn.send_end(seq, self.timeout)
        except BaseException as error:  # handed to the reading thread
            if not self.stop.is_set():
                self.send_error = error
                self.conn.close()

    def _results(self) -> Iterator[pa.RecordBatch]:
        expected = 0
        try:
            while True:
                try:
                    message = _receive(self.conn, self.timeout)
                except WorkerLostError:
                    self._raise_send_error()
                    raise
                if message[0] == "ack":
                    self.credit.release()
                elif message[0] == "batch":
                    if message[1] != expected:
                        raise ProtocolError(f"result {message[1]} arrived where {expected} was due")
                    expected += 1
                    yield message[2]
                elif message[0] == "status":
                    self.stats = StreamStats.of_status(message[3])
                    if message[1] != "ok":
                        raise _status_error(message[1], message[2])
                    self._raise_send_error()
                    return
                else:
                    raise ProtocolError(f"unexpected {message[0]} from the executor")
        finally:
            self.stop.set()
            self.conn.close()
            self.sender.join(self.timeout)

    def _raise_send_error(self) -> None:
        self.sender.join(self.timeout)
        if self.send_error is not None:
            raise self.send_error
