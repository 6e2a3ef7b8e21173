"""Streams opened by hand, for the tests that need to see each message of
the protocol (the client hides them): on a bare native connection, or
through the Flight front as a plain ``pyarrow.flight`` client written from
PROTOCOL.md alone."""

from __future__ import annotations

import base64
import json

import pyarrow as pa
import pyarrow.flight as flight

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


def by_hand_open(func, output_schema, kind="scalar_row", body_follows=False):
    """``func`` sealed, and the Flight descriptor whose JSON document opens
    a stream of it (``body_follows``: the envelope comes as the first
    message instead of when the service asks)."""
    sealed = sealing.seal(func)
    document = {
        "version": 1,
        "kind": kind,
        "digest": sealing.read_header(sealed).digest,
        "window": 4,
        "output_schema": base64.b64encode(output_schema.serialize().to_pybytes()).decode(),
    }
    if body_follows:
        document["body_follows"] = True
    return sealed, flight.FlightDescriptor.for_command(json.dumps(document).encode())


def meta(chunk):
    """A Flight message's application metadata: the protocol's frame."""
    return chunk.app_metadata.to_pybytes()
