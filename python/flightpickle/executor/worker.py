"""One worker process of the executor service: it accepts connections on the
listening socket it shares with its siblings and serves one stream at a time.

The socket I/O and Arrow decoding happen in Rust with the interpreter lock
released; this module only decides what each message means.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
import traceback
from collections import OrderedDict
from typing import Iterator

import pyarrow as pa

from .. import _native, sealing
from . import spark_commands, task_context, udf_bundle
from .hang_up import HangUpWatch
from .errors import StreamFailure
from .kinds import KINDS, ONE_RESULT_PER_BATCH, StreamSpec
from .settings import Settings
from .spark_kinds import BUNDLE_KINDS, COMMAND_KINDS, SINGLE_UDF_KINDS

#: Seconds between looks at the stop flag while no client connects.
ACCEPT_WAIT = 0.1
#: Seconds to deliver a final status to a client that does not read.
STATUS_SEND_TIMEOUT = 5.0
FUNCTION_CACHE_SIZE = 128
PROTOCOL_VERSION = 1


class Deadlines:
    """The idle deadline of each wait and the total deadline of the stream."""

    def __init__(self, settings: Settings):
        self.idle = settings.idle_timeout
        self.end = time.monotonic() + settings.total_timeout if settings.total_timeout > 0 else None

    def next_wait(self) -> float:
        if self.end is None:
            return self.idle
        left = self.end - time.monotonic()
        if left <= 0:
            raise StreamFailure("deadline", "the stream outlived its total deadline")
        return min(self.idle, left)

    def describe_timeout(self) -> str:
        if self.end is not None and time.monotonic() >= self.end:
            return "the stream outlived its total deadline"
        return f"no message from the caller for {self.idle:g} s (idle deadline)"


class Functions:
    """Functions this worker opened, by digest, most recently used last."""

    def __init__(self, size: int = FUNCTION_CACHE_SIZE):
        self._by_digest: OrderedDict[str, object] = OrderedDict()
        self._size = size

    def get(self, digest: str):
        func = self._by_digest.get(digest)
        if func is not None:
            self._by_digest.move_to_end(digest)
        return func

    def open(self, body: bytes, digest: str):
        """The function a sealed envelope, or a bundle of UDF commands, holds."""
        if udf_bundle.is_bundle(body):
            func = _loading(lambda: udf_bundle.read_bundle(body, digest, _load_command))
        else:
            loaded = _loading(lambda: _load_sealed(body, digest))
            # A PySpark command is kept whole: its return type decides conversions.
            func = spark_commands.command_of(loaded) or loaded
            if not callable(getattr(func, "func", func)):
                raise StreamFailure("protocol_error", f"the sealed object is a {type(func).__name__}, not a function")
        self._by_digest[digest] = func
        while len(self._by_digest) > self._size:
            self._by_digest.popitem(last=False)
        return func


class StreamStats:
    """What a stream's final status reports of the worker's side: the time
    spent in the function, and whether the function came from this worker's
    cache. ``function_cached`` stays None until the function is known, and
    then nothing is reported (the stream was refused before it ran)."""

    def __init__(self):
        self.function_nanos = 0
        self.function_cached: bool | None = None

    def status_fields(self) -> dict:
        if self.function_cached is None:
            return {}
        return {"function_nanos": self.function_nanos, "function_cached": self.function_cached}


def _load_sealed(envelope: bytes, digest: str):
    header = sealing.read_header(envelope)
    if header.digest != digest:
        raise StreamFailure(
            "protocol_error", f"the envelope's digest {header.digest} is not the digest {digest} in open"
        )
    return sealing.load_sealed(envelope)


def _load_command(envelope: bytes) -> spark_commands.SparkCommand:
    """A command of a bundle: a sealed PySpark UDF command, checked as a single function's envelope is."""
    command = spark_commands.command_of(_load_sealed(envelope, sealing.read_header(envelope).digest))
    if command is None:
        raise udf_bundle.BundleError("a bundle holds a sealed object that is not a PySpark UDF command")
    return command


def _loading(load):
    """``load()``, its failures as the stream's: a refused envelope or bundle
    is the caller's error, an exception while unpickling the function's."""
    try:
        return load()
    except sealing.SealedPayloadError as refusal:
        raise StreamFailure("protocol_error", f"the sealed function was refused: {refusal}") from None
    except udf_bundle.BundleError as refusal:
        raise StreamFailure("protocol_error", f"the UDF bundle was refused: {refusal}") from None
    except StreamFailure:
        raise
    except Exception:
        raise StreamFailure("udf_error", traceback.format_exc()) from None


def expect(message: tuple, *names: str) -> tuple:
    if message[0] not in names:
        raise StreamFailure("protocol_error", f"expected {' or '.join(names)}, got {message[0]}")
    return message


class Inputs:
    """The input batches of a stream, acknowledged as they are taken.

    A failure while reading is kept here as well as raised, because for the
    iterator kinds it surfaces inside the user's function, which must not be
    blamed for it.
    """

    def __init__(self, conn, deadlines: Deadlines, outbox: Outbox):
        self.conn = conn
        self.deadlines = deadlines
        self.outbox = outbox
        self.failure: BaseException | None = None
        #: Batches handed out, and how many of them were acknowledged.
        self.taken = 0
        self.acked = 0
        #: Nanoseconds spent waiting on the caller (receiving, acknowledging),
        #: which the function's time must not include.
        self.waited_nanos = 0

    def take_ack(self) -> int | None:
        """The sequence number of the last batch handed out if it is not yet
        acknowledged, now counted as acknowledged: for a result that goes
        with it in the same write."""
        if self.acked == self.taken:
            return None
        self.acked = self.taken
        return self.taken - 1

    def __iter__(self) -> Iterator[pa.RecordBatch]:
        # Batch n is acknowledged when batch n+1 (or the end) is asked for,
        # unless its result already carried the ack (take_ack). Either way
        # the ack follows the results of batch n that were sent by then; a
        # result the outbox holds leaves with it, in one write.
        while True:
            started = time.perf_counter_ns()
            try:
                if self.acked < self.taken:
                    self.outbox.flush(self.taken - 1)
                    self.acked = self.taken
                message = expect(self.conn.recv(self.deadlines.next_wait()), "batch", "end")
                if message[0] == "end":
                    if message[1] != self.taken:
                        raise StreamFailure("protocol_error", f"end says {message[1]} batches, {self.taken} arrived")
                    return
                if message[1] != self.taken:
                    raise StreamFailure("protocol_error", f"batch {message[1]} arrived where {self.taken} was due")
            except BaseException as failure:
                self.failure = failure
                raise
            finally:
                self.waited_nanos += time.perf_counter_ns() - started
            self.taken += 1
            yield message[2]


class Outbox:
    """The result batches of a stream on their way to the caller.

    An iterator kind's function may take its next input right after it
    yields a result, and that is when the previous input is acknowledged.
    Sent at once, the result and the ack would be two writes, and a caller
    waiting for the result would often wake up for each. So the outbox
    holds the latest result back until the function either asks for input
    (the result then leaves in the same write as the ack), yields again, or
    ends. A function that works between a yield and its next request for
    input delays that result by as long; it never holds it for good.
    """

    def __init__(self, conn, deadlines: Deadlines):
        self.conn = conn
        self.deadlines = deadlines
        self.sent = 0
        self.held: pa.RecordBatch | None = None

    def send(self, batch: pa.RecordBatch, ack: int | None = None) -> None:
        """Sends ``batch`` now (after any held result), with ``Ack ack`` in the same write."""
        self.flush()
        self._send(batch, ack)

    def hold(self, batch: pa.RecordBatch) -> None:
        """Keeps ``batch`` back until the next ``flush`` (after sending any held result)."""
        self.flush()
        self.held = batch

    def flush(self, ack: int | None = None) -> None:
        """Sends the held result, if any, and ``Ack ack`` if given, in one write."""
        batch, self.held = self.held, None
        if batch is not None:
            self._send(batch, ack)
        elif ack is not None:
            self.conn.send_ack(ack, self.deadlines.idle)

    def _send(self, batch: pa.RecordBatch, ack: int | None) -> None:
        self.conn.send_batch(self.sent, batch, self.deadlines.idle, ack=ack)
        self.sent += 1


def serve_stream(conn, functions: Functions, settings: Settings, watch: HangUpWatch | None = None) -> str:
    """Serves one stream to its end and returns the status code it sent.

    ``watch``: ends the worker if the caller hangs up and the stream's
    function runs on past the grace (see ``hang_up``). It watches until the
    final status is due: a caller may close as soon as it has read that."""
    deadlines = Deadlines(settings)
    stats = StreamStats()
    try:
        with watch.watching(conn) if watch is not None else contextlib.nullcontext():
            code, text = _run(conn, functions, deadlines, stats)
    except StreamFailure as failure:
        code, text = failure.code, failure.message
    except _native.TransportError as error:
        kind, text = error.args
        if kind in ("closed", "io"):
            conn.close()
            return "lost"
        code = "deadline" if kind == "timeout" else "protocol_error"
        text = deadlines.describe_timeout() if kind == "timeout" else text
    except Exception:  # a bug here must cost one stream, not the worker
        code, text = "protocol_error", f"the executor failed serving this stream:\n{traceback.format_exc()}"
    try:
        conn.send_status(code, text, STATUS_SEND_TIMEOUT, **stats.status_fields())
    except _native.TransportError:
        pass
    conn.close()
    return code


def _run(conn, functions: Functions, deadlines: Deadlines, stats: StreamStats) -> tuple[str, str]:
    _, info, envelope = expect(conn.recv(deadlines.next_wait()), "open")
    if info["version"] != PROTOCOL_VERSION:
        raise StreamFailure("protocol_error", f"protocol version {info['version']} is not {PROTOCOL_VERSION}")
    spec = StreamSpec(info["kind"], info["input_schema"], info["output_schema"], info["row_errors"], info["group_keys"])
    try:
        spec.check()
        task = task_context.sent_task(spec.input_schema)
    except ValueError as error:
        raise StreamFailure("protocol_error", str(error)) from None
    func, stats.function_cached = _function(conn, functions, info["digest"], envelope, deadlines)
    _check_function(func, spec)
    conn.set_incoming_schema(spec.input_schema)
    conn.set_outgoing_schema(spec.output_schema)
    conn.send_ready(deadlines.idle)
    with task_context.running_as(task):
        _evaluate(conn, func, spec, deadlines, stats)
    return "ok", ""


def _function(conn, functions: Functions, digest: str, envelope, deadlines: Deadlines) -> tuple[object, bool]:
    """The stream's function, and whether it was this worker's already."""
    func = functions.get(digest)
    if func is not None:
        return func, True
    if envelope is None:
        conn.send_need_body(deadlines.idle)
        envelope = expect(conn.recv(deadlines.next_wait()), "body")[1]
        if not envelope:
            raise StreamFailure("unknown_digest", f"no function with digest {digest} here, and none was sent")
    return functions.open(envelope, digest), False


def _evaluate(conn, func, spec: StreamSpec, deadlines: Deadlines, stats: StreamStats) -> None:
    outbox = Outbox(conn, deadlines)
    inputs = Inputs(conn, deadlines, outbox)
    results = _evaluation(func, spec, iter(inputs))
    # Result n of these kinds is all that comes of input n: its ack travels
    # in the same write, and the caller wakes once for both. The iterator
    # kinds' results wait in the outbox for the ack instead.
    ack_with_results = spec.kind in ONE_RESULT_PER_BATCH
    while True:
        # The function's time is the time in next() less the time the kind
        # spent waiting for input inside it (iterator kinds pull their input).
        started, waited = time.perf_counter_ns(), inputs.waited_nanos
        try:
            batch = next(results)
        except StopIteration:
            break
        except Exception:
            # Raised straight from the call: a local naming the failure would
            # sit in this frame, which its traceback holds (see _failure_of).
            raise _failure_of(inputs, outbox) from None
        finally:
            stats.function_nanos += max(0, time.perf_counter_ns() - started - (inputs.waited_nanos - waited))
        if ack_with_results:
            outbox.send(batch, ack=inputs.take_ack())
        else:
            outbox.hold(batch)
    outbox.flush()


def _failure_of(inputs: Inputs, outbox: Outbox) -> BaseException:
    """What the stream failed with, called while the function's exception
    is handled: the input's own failure if reading failed (the function is
    not to blame), else the function's traceback as ``udf_error``.

    The input's failure is taken out of ``inputs``: its traceback holds the
    frame that holds ``inputs``, and that cycle would keep the connection,
    and its socket's descriptor, until the next garbage collection.

    A held result is sent ahead of the failure's status, as it would have
    gone had it not been held; not when the connection itself failed.
    """
    failure, inputs.failure = inputs.failure, None
    if failure is None:
        failure = StreamFailure("udf_error", traceback.format_exc())
    if not isinstance(failure, _native.TransportError):
        outbox.flush()
    return failure


def _check_function(func, spec: StreamSpec) -> None:
    """Refuses a stream whose output columns are not one per UDF (and the
    row error column), or a bundle whose arguments are not input columns."""
    outputs = 1
    try:
        if isinstance(func, udf_bundle.UdfBundle):
            if spec.kind not in BUNDLE_KINDS or spec.row_errors:
                raise ValueError(f"a UDF bundle is for {' and '.join(BUNDLE_KINDS)} without row errors")
            func.check_columns(len(spec.input_schema))
            if spec.kind in SINGLE_UDF_KINDS and not func.is_single_udf():
                raise ValueError(f"{spec.kind} takes one UDF with positional arguments, not a chain or several")
            outputs = len(func.calls)
        spec.check_outputs(outputs)
    except ValueError as error:
        raise StreamFailure("protocol_error", str(error)) from None


def _evaluation(func, spec: StreamSpec, batches):
    """The results of ``func`` over ``batches``: a PySpark command's (or a
    bundle's) with PySpark's conversions where they differ from plain Arrow's.
    Row errors are a service feature, not Spark's: they keep Arrow's."""
    if isinstance(func, spark_commands.SparkCommand) and spec.kind in BUNDLE_KINDS and not spec.row_errors:
        func = udf_bundle.UdfBundle.of(func, len(spec.input_schema))
    if isinstance(func, udf_bundle.UdfBundle):
        return BUNDLE_KINDS[spec.kind](func, spec, batches)
    if isinstance(func, spark_commands.SparkCommand):
        if spec.kind in COMMAND_KINDS:
            return COMMAND_KINDS[spec.kind](func, spec, batches)
        func = func.func
    if spec.kind not in KINDS:
        raise StreamFailure("protocol_error", f"{spec.kind} evaluates PySpark UDF commands only, not plain functions")
    return KINDS[spec.kind](func, spec, batches)


def run(fd: int, settings: Settings, ready_fd: int | None = None) -> None:
    """The worker's main loop: serve streams until told to stop or orphaned.

    ``ready_fd``: a pipe to write one byte to once this worker accepts.
    """
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    # Ctrl-C reaches the whole process group; the supervisor decides.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    listener = _native.Listener.adopt(fd, body_limit=settings.body_limit)
    parent = os.getppid()
    functions = Functions()
    watch = HangUpWatch(settings.cancel_grace)
    if ready_fd is not None:
        os.write(ready_fd, b"r")
        os.close(ready_fd)
    while not stopping and os.getppid() == parent:
        conn = listener.accept(ACCEPT_WAIT)
        if conn is not None:
            serve_stream(conn, functions, settings, watch)
