"""When the worker acknowledges input batches: with the result of the same
batch, in one write, for the kinds that call the function once per batch;
when the next batch is asked for, for the iterator kinds. Either way every
input is acknowledged once, in order, after the results it led to."""

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


def run(kind, func, output_schema, group_keys=()):
    batches = [pa.record_batch({"k": pa.array([i, i], pa.int64())}) for i in range(COUNT)]
    conn = RecordingConnection(batches)
    spec = StreamSpec(kind, batches[0].schema, output_schema, False, list(group_keys))
    deadlines = worker.Deadlines(Settings())
    worker._evaluate(conn, func, spec, worker.Inputs(conn, deadlines), deadlines, worker.StreamStats())
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


def test_iterator_kinds_ack_when_the_function_asks_for_the_next_batch():
    sent = run("map_arrow", lambda batches: batches, pa.schema([("k", pa.int64())]))
    expected = [("batch", 0, None)]
    for seq in range(1, COUNT):
        expected += [("ack", seq - 1), ("batch", seq, None)]
    assert sent == expected + [("ack", COUNT - 1)]


def test_a_function_that_reads_ahead_gets_its_batches_acknowledged_as_it_takes_them():
    def reads_everything_first(batches):
        batches = list(batches)
        yield from batches

    sent = run("map_arrow", reads_everything_first, pa.schema([("k", pa.int64())]))
    assert sent == [("ack", seq) for seq in range(COUNT)] + [("batch", seq, None) for seq in range(COUNT)]
