"""A stream that fails lets go of its connection at once, whether its caller
went away mid-stream, sent a batch out of order or the function raised:
nothing the worker kept of the failure (the input iterator, the exception
and its traceback) may hold the connection in a reference cycle, since a
cycle waits for the garbage collector and with it the socket's descriptor
stays open in the worker."""

from __future__ import annotations

import gc
import weakref

import pyarrow as pa
import pytest

from flightpickle import _native, sealing
from flightpickle.executor import worker
from flightpickle.executor.settings import Settings

ONE = pa.record_batch({"x": pa.array([1, 2, 3], pa.int64())})
RESULT = pa.schema([("result", pa.int64())])


class ScriptedCaller:
    """A connection whose caller opens a stream, sends ``batches`` and then
    hangs up."""

    def __init__(self, kind, func, output_schema, batches=(("batch", 0, ONE),)):
        envelope = sealing.seal(func)
        info = {
            "version": worker.PROTOCOL_VERSION,
            "kind": kind,
            "digest": sealing.read_header(envelope).digest,
            "input_schema": ONE.schema,
            "output_schema": output_schema,
            "row_errors": False,
            "group_keys": [],
        }
        self.incoming = [("open", info, envelope), *batches]
        self.statuses = []

    def recv(self, timeout):
        if not self.incoming:
            raise _native.TransportError("closed", "the caller closed the stream")
        return self.incoming.pop(0)

    def set_incoming_schema(self, schema):
        pass

    def set_outgoing_schema(self, schema):
        pass

    def send_ready(self, timeout):
        pass

    def send_batch(self, seq, batch, timeout, *, ack=None):
        pass

    def send_ack(self, seq, timeout):
        pass

    def send_status(self, code, text, timeout, **stats):
        self.statuses.append(code)

    def close(self):
        pass


@pytest.fixture
def collector_off():
    gc.collect()
    gc.disable()
    yield
    gc.enable()


def served(conn):
    """The code ``serve_stream`` returned, the statuses sent, and whether
    the connection outlived the call: the caller here keeps no reference."""
    code = worker.serve_stream(conn, worker.Functions(), Settings())
    statuses, gone = conn.statuses, weakref.ref(conn)
    del conn
    return code, statuses, gone() is None


@pytest.mark.parametrize(
    "kind, func, output_schema",
    [
        ("scalar_row", lambda x: x, RESULT),
        ("map_arrow", lambda batches: batches, ONE.schema),
    ],
)
def test_a_lost_stream_frees_its_connection(collector_off, kind, func, output_schema):
    code, statuses, freed = served(ScriptedCaller(kind, func, output_schema))
    assert code == "lost" and statuses == []  # nobody is left to read a status
    assert freed, "the lost stream's connection is kept alive by a reference cycle"


def test_a_stream_with_a_batch_out_of_order_frees_its_connection(collector_off):
    batches = [("batch", 0, ONE), ("batch", 5, ONE)]
    code, statuses, freed = served(ScriptedCaller("map_arrow", lambda batches: batches, ONE.schema, batches))
    assert code == "protocol_error" and statuses == ["protocol_error"]
    assert freed, "the failed stream's connection is kept alive by a reference cycle"


def test_a_stream_whose_function_raises_frees_its_connection(collector_off):
    code, statuses, freed = served(ScriptedCaller("scalar_row", lambda x: x // 0, RESULT))
    assert code == "udf_error" and statuses == ["udf_error"]
    assert freed, "the failed stream's connection is kept alive by a reference cycle"
