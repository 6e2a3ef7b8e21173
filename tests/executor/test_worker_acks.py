"""When the worker acknowledges input batches: with the result of the same
batch, in one write, for the kinds that call the function once per batch;
when the next batch is asked for, for the iterator kinds, whose latest result
waits for that moment and goes in the same write. Either way every input is
acknowledged once, in order, after the results it led to."""

from __future__ import annotations

import pyarrow as pa
import pytest

from flightpickle.executor import worker
from flightpickle.executor.kinds import StreamSpec
from flightpickle.executor.settings import Settings

COUNT = 3


class RecordingConnection:
    """Serves COUNT input batches, then End; records what the worker sends."""

    def __init__(self, batches):
        self.incoming = [("batch", seq, batch) for seq, batch in enumerate(batches)] + [("end", len(batches))]
        self.sent: list[tuple] = []

    def recv(self, timeout):
        return self.incoming.pop(0)

    def send_batch(self, seq, batch, timeout, *, ack=None):
        self.sent.append(("batch", seq, ack))

    def send_ack(self, seq, timeout):
        self.sent.append(("ack", seq))


def run(kind, func, output_schema, group_keys=(), conn=None):
    batches = [pa.record_batch({"k": pa.array([i, i], pa.int64())}) for i in range(COUNT)]
    conn = conn or RecordingConnection(batches)
    spec = StreamSpec(kind, batches[0].schema, output_schema, False, list(group_keys))
    deadlines = worker.Deadlines(Settings())
    worker._evaluate(conn, func, spec, deadlines, worker.StreamStats())
    return conn.sent


RESULT = pa.schema([("result", pa.int64())])


@pytest.mark.parametrize(
    "kind, func, schema, keys",
    [
        ("scalar_row", lambda k: k, RESULT, ()),
        ("scalar_pandas", lambda k: k, RESULT, ()),
        ("grouped_map_pandas", lambda frame: frame, pa.schema([("k", pa.int64())]), ("k",)),
    ],
)
def test_kinds_with_one_result_per_batch_send_the_ack_with_it(kind, func, schema, keys):
    assert run(kind, func, schema, keys) == [("batch", seq, seq) for seq in range(COUNT)]


def test_iterator_kinds_send_a_result_with_the_ack_when_the_function_asks_for_the_next_batch():
    sent = run("map_arrow", lambda batches: batches, pa.schema([("k", pa.int64())]))
    assert sent == [("batch", seq, seq) for seq in range(COUNT)]


def test_a_result_yielded_twice_per_input_leaves_when_the_next_comes_and_the_last_with_the_ack():
    def twice(batches):
        for batch in batches:
            yield batch
            yield batch

    sent = run("map_arrow", twice, pa.schema([("k", pa.int64())]))
    expected = []
    for seq in range(COUNT):
        expected += [("batch", 2 * seq, None), ("batch", 2 * seq + 1, seq)]
    assert sent == expected


def test_a_result_yielded_after_the_input_ends_still_leaves():
    def total_at_the_end(batches):
        rows = sum(batch.num_rows for batch in batches)
        yield pa.record_batch({"k": pa.array([rows], pa.int64())})

    sent = run("map_arrow", total_at_the_end, pa.schema([("k", pa.int64())]))
    assert sent == [("ack", seq) for seq in range(COUNT)] + [("batch", 0, None)]


def test_a_held_result_leaves_before_the_function_fails():
    def fails_after_one(batches):
        for batch in batches:
            yield batch
            raise RuntimeError("boom")

    conn = RecordingConnection([pa.record_batch({"k": pa.array([1], pa.int64())})])
    with pytest.raises(worker.StreamFailure, match="boom"):
        run("map_arrow", fails_after_one, pa.schema([("k", pa.int64())]), conn=conn)
    assert conn.sent == [("batch", 0, None)]


def test_a_function_that_reads_ahead_gets_its_batches_acknowledged_as_it_takes_them():
    def reads_everything_first(batches):
        batches = list(batches)
        yield from batches

    sent = run("map_arrow", reads_everything_first, pa.schema([("k", pa.int64())]))
    assert sent == [("ack", seq) for seq in range(COUNT)] + [("batch", seq, None) for seq in range(COUNT)]
