"""Writes the seed corpora for the fuzz targets from real flightpickle output.

Run from the repository root with the venv's Python:
    .venv/bin/python tests/fuzz/make_corpus.py
libFuzzer adds what it finds to the same folders; commit those that add coverage.
"""

import enum
import hashlib
import pathlib
import pickle

import flightpickle
import flightpickle.sealing

CORPUS = pathlib.Path(__file__).parent / "corpus"
KEY = "fuzzing key"  # the key the envelope_open target verifies with
OFFSET = 10


class Colour(enum.Enum):
    RED = 1


def make_closure(n):
    return lambda x: x + n + OFFSET


SAMPLES = [make_closure(1), Colour, {"a": [1, 2.5, None, True]}, b"bytes" * 50, "text"]


def write(target, data):
    folder = CORPUS / target
    folder.mkdir(parents=True, exist_ok=True)
    (folder / hashlib.sha1(data).hexdigest()).write_bytes(data)


for sample in SAMPLES:
    for protocol in (0, 2, 4, 5):
        try:
            write("pickle_inspect", flightpickle.dumps(sample, protocol=max(protocol, 2)))
            write("pickle_inspect", pickle.dumps(sample, protocol=protocol))
        except (pickle.PicklingError, AttributeError):  # plain pickle refuses closures
            pass
    for target in ("native", "cloudpickle"):
        write("pickle_inspect", flightpickle.dumps(sample, target=target))
    write("envelope_open", flightpickle.seal(sample))
    write("envelope_open", flightpickle.seal(sample, key=KEY))
    write("envelope_open", flightpickle.seal(sample, key=KEY, compress_threshold=0))
    write("envelope_open", flightpickle.seal(sample, compress_threshold=0))
    # Spark commands as the driver hook writes them, sealed (signed or not) and plain.
    write("command_inspect", pickle.dumps(flightpickle.sealing.embed(sample), protocol=5))
    write("command_inspect", pickle.dumps(flightpickle.sealing.embed(sample, key=KEY), protocol=5))
    write("command_inspect", pickle.dumps(flightpickle.sealing.embed(sample, cache=False), protocol=2))
    write("command_inspect", flightpickle.dumps(sample, target="cloudpickle"))

# Record batches as a peer sends them, for transport_batch: a byte choosing one
# of the target's fixed schemas (their order in `fixed_schemas`), or a byte past
# them followed by the schema message; then the batch's message and its body.
import datetime  # noqa: E402
import decimal  # noqa: E402
import struct  # noqa: E402

import pyarrow as pa  # noqa: E402

SCHEMA_FROM_INPUT = 255


def prefixed(data):
    return struct.pack("<H", len(data)) + data


def batch_parts(batch):
    message = pa.ipc.read_message(batch.serialize())
    return message.metadata.to_pybytes(), message.body.to_pybytes()


def schema_message(schema):
    return pa.ipc.read_message(schema.serialize()).metadata.to_pybytes()


def transport_seed(choice, batch):
    metadata, body = batch_parts(batch)
    head = bytes([choice])
    if choice == SCHEMA_FROM_INPUT:
        head += prefixed(schema_message(batch.schema))
    write("transport_batch", head + prefixed(metadata) + body)


FIXED_SCHEMA_BATCHES = [
    pa.record_batch({"id": pa.array([1, None, 3], pa.int64()), "name": pa.array(["a", None, "ccc"])}),
    pa.record_batch(
        [pa.array([1, 2], pa.int64()), pa.array(["é", "x"])],
        schema=pa.schema([pa.field("id", pa.int64(), False), pa.field("name", pa.string(), False)]),
    ),
    pa.record_batch(
        {
            "flag": pa.array([True, None, False]),
            "value": pa.array([1.5, None, -0.0]),
            "day": pa.array([datetime.date(2024, 1, 1), None, datetime.date(1970, 1, 2)], pa.date32()),
            "at": pa.array([0, None, 10**12], pa.timestamp("us")),
            "price": pa.array([decimal.Decimal("1.25"), None, decimal.Decimal("-3.00")], pa.decimal128(10, 2)),
        }
    ),
    pa.record_batch(
        [
            pa.array([b"\x00\xff", None], pa.binary()),
            pa.array(["text", None], pa.large_string()),
            pa.array([b"", b"blob"], pa.large_binary()),
            pa.array([-1, None], pa.int8()),
            pa.array([8080, 0], pa.uint16()),
        ],
        schema=pa.schema(
            [
                pa.field("raw", pa.binary()),
                pa.field("text", pa.large_string()),
                pa.field("blob", pa.large_binary(), False),
                pa.field("small", pa.int8()),
                pa.field("port", pa.uint16(), False),
            ]
        ),
    ),
    pa.record_batch({"items": pa.array([[1, 2], None, [], [None]], pa.list_(pa.int32()))}),
    pa.record_batch({"point": pa.array([{"x": 1, "label": "a"}, None, {"x": None, "label": None}])}),
]

for choice, batch in enumerate(FIXED_SCHEMA_BATCHES):
    transport_seed(choice, batch)
    transport_seed(choice, batch.slice(0, 0))
    transport_seed(SCHEMA_FROM_INPUT, batch)
transport_seed(
    SCHEMA_FROM_INPUT,
    pa.record_batch({"m": pa.array([{"k": 1}], pa.map_(pa.string(), pa.int64())), "f": pa.array([[1, 2]], pa.list_(pa.int8(), 2))}),
)
