"""The workload a profile-guided build of the extension is trained on:
``python -m benchmarks.profile_workload``, run by ``python/build_extension.sh``
with an instrumented build in place.

What it runs is what the benchmarks measure and what users do most: dumps
and loads of every harness case, sealing and unsealing, and batches through a
pair of native executor connections with each evaluation kind's step.
Code it never reaches is laid out as cold, so a path left out here gets
slower, not faster: add a part when a hot path is added.

A few seconds with the instrumented build; no timing is taken.
"""

import sys
import tempfile
from pathlib import Path

import pyarrow as pa

import flightpickle
from benchmarks.cases import CASES, LIBRARIES

ROUNDS_SMALL = 1000
ROUNDS_LARGE = 3
TIMEOUT = 60.0
# The 100 MB arrays would take seconds each and train nothing the 1 MB
# array of the pandas UDF case does not.
SKIPPED = {"numpy 100 MB"}


def pickling():
    library = LIBRARIES["flightpickle"]
    for case in CASES:
        if case.name in SKIPPED:
            continue
        obj = case.build()
        for _ in range(ROUNDS_LARGE if case.large else ROUNDS_SMALL):
            payload, buffers = library.dump(obj, case.out_of_band)
            library.load(payload, buffers)


def sealing():
    function = CASES[3].build()
    for _ in range(ROUNDS_SMALL):
        flightpickle.unseal(flightpickle.seal(function))


def batch() -> pa.RecordBatch:
    rows = 1000
    return pa.record_batch({
        "id": pa.array(range(rows), pa.int64()),
        "name": pa.array([f"row {i}" for i in range(rows)], pa.string()),
    })


def executor_connections():
    from flightpickle import _native
    from flightpickle.executor.kinds import KINDS, StreamSpec

    sample = batch()
    with tempfile.TemporaryDirectory(prefix="fp-profile-", dir="/tmp") as directory:
        path = str(Path(directory) / "pair.sock")
        listener = _native.Listener.bind(path, body_limit=1 << 30)
        sender = _native.Connection.connect(path, timeout=TIMEOUT, body_limit=1 << 30)
        receiver = listener.accept(TIMEOUT)
        sender.set_outgoing_schema(sample.schema)
        receiver.set_incoming_schema(sample.schema)
        for seq in range(ROUNDS_SMALL):
            sender.send_batch(seq, sample, TIMEOUT)
            receiver.recv(TIMEOUT)
            receiver.send_ack(seq, TIMEOUT)
            sender.recv(TIMEOUT)
        sender.close()
        receiver.close()
    output = pa.schema([("result", pa.int64())])
    for kind, func, schema in (
        ("scalar_pandas", lambda ids, names: ids, output),
        ("scalar_row", lambda row_id, name: row_id, output),
        ("map_arrow", lambda batches: batches, sample.schema),
    ):
        spec = StreamSpec(kind, sample.schema, schema, False, [])
        for _ in range(ROUNDS_SMALL // 10):
            next(KINDS[kind](func, spec, iter([sample])))


def main():
    for part in (pickling, sealing, executor_connections):
        part()
        print(f"profile workload: {part.__name__} done", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
