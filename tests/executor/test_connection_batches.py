"""Record batches through a pair of native connections in one process: what
arrives is what was sent, whatever the types, and it carries the stream's
declared schema (the receiver hands each batch to pyarrow with the schema it
imported once per stream)."""

from __future__ import annotations

import tempfile
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pytest

from flightpickle import _native

TIMEOUT = 10.0


@pytest.fixture
def pair():
    path = Path(tempfile.mkdtemp(prefix="fpx-", dir="/tmp")) / "pair.sock"
    listener = _native.Listener.bind(str(path), body_limit=1 << 24)
    sender = _native.Connection.connect(str(path), timeout=TIMEOUT, body_limit=1 << 24)
    receiver = listener.accept(TIMEOUT)
    yield sender, receiver
    sender.close()
    receiver.close()
    path.unlink()
    path.parent.rmdir()


def through(pair, batch: pa.RecordBatch, schema: pa.Schema | None = None) -> pa.RecordBatch:
    sender, receiver = pair
    schema = schema or batch.schema
    sender.set_outgoing_schema(schema)
    receiver.set_incoming_schema(schema)
    sender.send_batch(7, batch, TIMEOUT)
    name, seq, received = receiver.recv(TIMEOUT)
    assert (name, seq) == ("batch", 7)
    assert isinstance(received, pa.RecordBatch)
    return received


BATCHES = {
    "int64 and strings with nulls": pa.record_batch(
        {"x": pa.array([1, None, 3], pa.int64()), "s": pa.array(["a", None, "ccc"])}
    ),
    "nested": pa.record_batch(
        {
            "l": pa.array([[1, 2], None, []], pa.list_(pa.int32())),
            "st": pa.array([{"a": 1, "b": "x"}, None, {"a": None, "b": "z"}]),
            "m": pa.array([[("k", 1.5)], [], None], pa.map_(pa.string(), pa.float64())),
        }
    ),
    "temporal and decimal": pa.record_batch(
        {
            "t": pa.array([0, 1_700_000_000_000_000, None], pa.timestamp("us", tz="UTC")),
            "d": pa.array([None, 1, 2], pa.date32()),
            "n": pa.array([None, Decimal("123.45"), Decimal("-0.01")], pa.decimal128(12, 2)),
        }
    ),
    "no rows": pa.record_batch({"x": pa.array([], pa.int64()), "s": pa.array([], pa.string())}),
    "no columns": pa.RecordBatch.from_arrays([], schema=pa.schema([])),
}


@pytest.mark.parametrize("name", BATCHES)
def test_a_batch_arrives_as_sent(pair, name):
    batch = BATCHES[name]
    received = through(pair, batch)
    assert received.schema == batch.schema
    assert received.equals(batch)


def test_a_sliced_batch_arrives_as_its_slice(pair):
    batch = pa.record_batch({"x": pa.array(range(10), pa.int64()), "s": pa.array([str(i) for i in range(10)])})
    received = through(pair, batch.slice(3, 4))
    assert received.to_pydict() == {"x": [3, 4, 5, 6], "s": ["3", "4", "5", "6"]}


def test_a_batch_carries_the_declared_names_and_metadata(pair):
    declared = pa.schema([pa.field("declared", pa.int64())], metadata={b"origin": b"stream"})
    batch = pa.record_batch({"other": pa.array([1, 2], pa.int64())})
    received = through(pair, batch, declared)
    assert received.schema.names == ["declared"]
    assert received.schema.metadata == {b"origin": b"stream"}
    assert received.column(0).to_pylist() == [1, 2]


def test_a_new_incoming_schema_applies_to_the_next_batch(pair):
    through(pair, pa.record_batch({"x": pa.array([1], pa.int64())}))
    received = through(pair, pa.record_batch({"s": pa.array(["only strings now"])}))
    assert received.column(0).to_pylist() == ["only strings now"]


def test_received_batches_outlive_their_connection(pair):
    batch = BATCHES["int64 and strings with nulls"]
    received = through(pair, batch)
    pair[1].close()
    del pair
    assert received.equals(batch)


def strings_from_buffers(offsets: list[int], data: bytes) -> pa.Array:
    """A string array built without pyarrow's checks, as a buggy producer might."""
    return pa.Array.from_buffers(
        pa.string(), len(offsets) - 1, [None, pa.py_buffer(pa.array(offsets, pa.int32()).buffers()[1]), pa.py_buffer(data)]
    )


# The sender checks only what encoding relies on (pyarrow's own cheap checks
# pass for these); the receiver validates every offset and string.
@pytest.mark.parametrize(
    "offsets, data, why",
    [
        ([0, 2, 4], b"ab\xff\xfe", "utf"),
        ([0, 3, 1, 4], b"abcd", "offset"),
        ([0, 1, 3], "éa".encode(), "inside a utf-8 character"),
    ],
    ids=["invalid UTF-8", "offsets out of order", "offset inside a character"],
)
def test_invalid_strings_are_refused_by_the_receiver(pair, offsets, data, why):
    sender, receiver = pair
    broken = pa.RecordBatch.from_arrays([strings_from_buffers(offsets, data)], names=["s"])
    sender.set_outgoing_schema(broken.schema)
    receiver.set_incoming_schema(broken.schema)
    sender.send_batch(0, broken, TIMEOUT)
    with pytest.raises(_native.TransportError) as refused:
        receiver.recv(TIMEOUT)
    assert refused.value.args[0] == "protocol"
    assert why in refused.value.args[1].lower()


class CapsuleOnly:
    """Not a pyarrow object: only the Arrow PyCapsule interface."""

    def __init__(self, batch: pa.RecordBatch):
        self.batch = batch

    def __arrow_c_array__(self, requested_schema=None):
        return self.batch.__arrow_c_array__(requested_schema)


def int_and_text(values: list[int], names=("x", "s"), int_type=pa.int64()) -> pa.RecordBatch:
    columns = [pa.array(values, int_type), pa.array([f"v{v}" for v in values])]
    return pa.RecordBatch.from_arrays(columns, names=list(names))


# The sender imports a stream's schema once and then only each batch's
# arrays while the schema stays the same object or an equal one: whatever
# order schemas come in, each batch must arrive as itself, and one of other
# types must still be refused.
def test_batches_of_a_stream_arrive_as_sent_whichever_schema_object_they_carry(pair):
    sender, receiver = pair
    first = int_and_text([1, 2, 3])
    sender.set_outgoing_schema(first.schema)
    receiver.set_incoming_schema(first.schema)
    sequence = [
        first,
        first.slice(1, 2),  # the same schema object
        int_and_text([4, None, 6]),  # an equal schema, another object
        int_and_text([7], names=("y", "t")),  # other names, the same types
        CapsuleOnly(int_and_text([8, 9])),
        int_and_text([10, 11, 12, 13]),
        pa.RecordBatch.from_arrays(
            [pa.array([14], pa.int64()), pa.array(["v14"])],
            schema=pa.schema([pa.field("x", pa.int64(), nullable=False), pa.field("s", pa.string())]),
        ),
        int_and_text([15]),
    ]
    for seq, batch in enumerate(sequence):
        sender.send_batch(seq, batch, TIMEOUT)
        name, got, received = receiver.recv(TIMEOUT)
        sent = batch.batch if isinstance(batch, CapsuleOnly) else batch
        assert (name, got) == ("batch", seq)
        assert received.columns == sent.columns


def test_a_batch_of_other_types_is_refused_after_batches_of_the_stream(pair):
    sender, receiver = pair
    batch = int_and_text([1, 2])
    sender.set_outgoing_schema(batch.schema)
    receiver.set_incoming_schema(batch.schema)
    sender.send_batch(0, batch, TIMEOUT)
    sender.send_batch(1, int_and_text([3]), TIMEOUT)
    with pytest.raises(ValueError, match="schema mismatch"):
        sender.send_batch(2, int_and_text([4, 5], int_type=pa.int32()), TIMEOUT)
    sender.send_batch(2, int_and_text([6]), TIMEOUT)
    received = [receiver.recv(TIMEOUT)[1:] for _ in range(3)]
    assert [(seq, b.column(0).to_pylist()) for seq, b in received] == [(0, [1, 2]), (1, [3]), (2, [6])]


def bits(values):
    return pa.array(values, pa.bool_())


# After a stream's first batch, a batch of flat columns whose schema is the
# one seen before is sent from pyarrow's export as it is, its buffers read in
# place; one in another shape (sliced, offsets not from zero) is imported
# into arrays as before. Whichever way it goes, it must arrive as it was.
FLAT_BATCHES = {
    "int64 and strings with nulls": BATCHES["int64 and strings with nulls"],
    "booleans and numbers of every width": pa.record_batch(
        {
            "b": bits([True, None, False] * 5 + [True]),
            "i8": pa.array(list(range(-8, 8)), pa.int8()),
            "u16": pa.array([None] + list(range(15)), pa.uint16()),
            "f32": pa.array([float(i) / 3 for i in range(16)], pa.float32()),
            "d": pa.array([None, Decimal("1.25")] * 8, pa.decimal128(9, 2)),
            "t": pa.array(list(range(16)), pa.timestamp("ns")),
        }
    ),
    "binary and large text": pa.record_batch(
        {
            "bin": pa.array([b"\x00\xff", None, b""], pa.binary()),
            "lbin": pa.array([b"x", b"yy", None], pa.large_binary()),
            "ls": pa.array(["é", None, "ünïcode"], pa.large_string()),
        }
    ),
    "all nulls": pa.record_batch({"x": pa.array([None] * 9, pa.int64()), "s": pa.array([None] * 9, pa.string())}),
    "many rows": pa.record_batch({"x": pa.array(range(70_000), pa.int64()), "s": pa.array([str(i) for i in range(70_000)])}),
    "no rows": BATCHES["no rows"],
    "no columns": BATCHES["no columns"],
}


@pytest.mark.parametrize("name", FLAT_BATCHES)
def test_flat_batches_after_the_first_arrive_as_sent(pair, name):
    sender, receiver = pair
    batch = FLAT_BATCHES[name]
    sender.set_outgoing_schema(batch.schema)
    receiver.set_incoming_schema(batch.schema)
    again = pa.RecordBatch.from_arrays(batch.columns, schema=batch.schema)  # an equal schema, another object
    sequence = [batch, batch, again, batch.slice(1), batch]
    for seq, sent in enumerate(sequence):
        sender.send_batch(seq, sent, TIMEOUT)
        name_, got, received = receiver.recv(TIMEOUT)
        assert (name_, got) == ("batch", seq)
        assert received.num_rows == sent.num_rows
        assert received.equals(sent), (seq, received, sent)


def test_strings_whose_offsets_do_not_start_at_zero_arrive_as_their_text(pair):
    sender, receiver = pair
    shifted = pa.RecordBatch.from_arrays([strings_from_buffers([2, 3, 5], b"xxabcde")], names=["s"])
    sender.set_outgoing_schema(shifted.schema)
    receiver.set_incoming_schema(shifted.schema)
    for seq in range(2):
        sender.send_batch(seq, shifted, TIMEOUT)
        assert receiver.recv(TIMEOUT)[2].column(0).to_pylist() == ["a", "bc"]


def test_invalid_strings_sent_after_the_first_batch_are_refused_by_the_receiver(pair):
    sender, receiver = pair
    good = pa.RecordBatch.from_arrays([pa.array(["ok"])], names=["s"])
    broken = pa.RecordBatch.from_arrays([strings_from_buffers([0, 3, 1, 4], b"abcd")], names=["s"])
    sender.set_outgoing_schema(good.schema)
    receiver.set_incoming_schema(good.schema)
    sender.send_batch(0, good, TIMEOUT)
    sender.send_batch(1, broken, TIMEOUT)
    assert receiver.recv(TIMEOUT)[2].equals(good)
    with pytest.raises(_native.TransportError, match="offset"):
        receiver.recv(TIMEOUT)


def test_a_flat_batch_of_other_types_is_refused_each_time_it_is_sent(pair):
    sender, receiver = pair
    sender.set_outgoing_schema(pa.schema([("x", pa.int64())]))
    floats = pa.record_batch({"x": pa.array([1.5, 2.5], pa.float64())})  # the same width, other values
    for seq in range(2):
        with pytest.raises(ValueError, match="schema mismatch"):
            sender.send_batch(seq, floats, TIMEOUT)
    sender.send_batch(0, pa.record_batch({"x": pa.array([7], pa.int64())}), TIMEOUT)
    receiver.set_incoming_schema(pa.schema([("x", pa.int64())]))
    assert receiver.recv(TIMEOUT)[2].column(0).to_pylist() == [7]


def test_nulls_in_a_column_declared_non_nullable_are_refused_before_sending(pair):
    sender, receiver = pair
    schema = pa.schema([pa.field("x", pa.int64(), nullable=False)])
    sender.set_outgoing_schema(schema)
    receiver.set_incoming_schema(schema)
    sender.send_batch(0, pa.RecordBatch.from_arrays([pa.array([1, 2], pa.int64())], schema=schema), TIMEOUT)
    with_nulls = pa.RecordBatch.from_arrays([pa.array([3, None], pa.int64())], schema=schema)
    for seq in (1, 1):  # the second time, the schema is known and the batch exported only
        with pytest.raises(ValueError, match="non-nullable"):
            sender.send_batch(seq, with_nulls, TIMEOUT)
    assert receiver.recv(TIMEOUT)[2].column(0).to_pylist() == [1, 2]
