"""Streams opened by hand on a bare native connection, for the tests that
need to see each message of the protocol (the client hides them)."""

from __future__ import annotations

import pyarrow as pa

from flightpickle import _native, sealing

TIMEOUT = 30.0
ONE = pa.record_batch({"x": pa.array([1, 2, 3], pa.int64())})
RESULT = pa.schema([("result", pa.int64())])


def connect(service, body_limit=1 << 20):
    return _native.Connection.connect(str(service.path), timeout=TIMEOUT, body_limit=body_limit)


def send_open(conn, *, digest, envelope=None, kind="scalar_row", input_schema=ONE.schema, output_schema=RESULT):
    """Sends ``Open`` for a stream with a window of four batches and no row errors."""
    conn.send_open(
        kind=kind,
        digest=digest,
        input_schema=input_schema,
        output_schema=output_schema,
        window=4,
        row_errors=False,
        group_keys=[],
        envelope=envelope,
        timeout=TIMEOUT,
    )


def open_ready(service, func, **open_options):
    """A connection with a stream of ``func`` open (its envelope sent in
    ``Open``) and ready for batches."""
    conn = connect(service)
    sealed = sealing.seal(func)
    send_open(conn, digest=sealing.read_header(sealed).digest, envelope=sealed, **open_options)
    reply = conn.recv(TIMEOUT)
    assert reply[0] == "ready", reply
    return conn


def final_status(conn):
    """The status that ends the stream, skipping results and acks."""
    while True:
        message = conn.recv(TIMEOUT)
        if message[0] == "status":
            return message[1], message[2]
