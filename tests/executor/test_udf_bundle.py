"""UDF bundles: several PySpark UDF commands on one stream, with chains and
keyword arguments, as the Spark plugin sends one of Spark's operators; and
the bundles the service refuses.

The bundles here are written by ``bundle_bytes`` from the layout described in
``PROTOCOL.md``, independently of the plugin's writer (``UdfBundle.java``).
"""

from __future__ import annotations

import datetime
import hashlib
import json
import struct

import pyarrow as pa
import pytest
from pyspark.sql.pandas.types import to_arrow_schema
from pyspark.sql.types import ArrayType, DateType, LongType, StringType, StructField, StructType

from flightpickle import sealing
from flightpickle.executor.kinds import StreamSpec
from flightpickle.executor.spark_kinds import BUNDLE_KINDS
from flightpickle.executor.udf_bundle import BundleError, read_bundle
from flightpickle.executor.worker import _load_command
from raw_streams import connect, send_open

pytestmark = pytest.mark.timeout(120)


def bundle_bytes(udfs: list[dict], commands: list) -> bytes:
    layout = json.dumps({"udfs": udfs}).encode()
    envelopes = [sealing.seal(command) for command in commands]
    parts = [b"FPBUNDLE", struct.pack("<I", len(layout)), layout, struct.pack("<I", len(envelopes))]
    for envelope in envelopes:
        parts += [struct.pack("<Q", len(envelope)), envelope]
    return b"".join(parts)


def digest_of(body: bytes) -> str:
    return "bundle-" + hashlib.sha256(body).hexdigest()


def spark_schema(**types) -> pa.Schema:
    return to_arrow_schema(StructType([StructField(name, t) for name, t in types.items()]), timezone="UTC")


def make_commands() -> list:
    """PySpark commands of functions defined here, so that they travel by value to a service."""

    def add(a, b):
        return a + b

    def pair(a):
        return (a, a)  # a tuple: PySpark passes it on as it is, not as an array

    def describe(value, *, suffix="!"):
        return f"{type(value).__name__}:{value!r}{suffix}"

    def day_after(day):
        return day + datetime.timedelta(days=1)

    return [(add, LongType()), (pair, ArrayType(LongType())), (describe, StringType()), (day_after, DateType())]


INPUT = pa.RecordBatch.from_arrays(
    [pa.array([1, 2]), pa.array([10, 20]), pa.array(["x", "y"]), pa.array([datetime.date(2024, 2, 28)] * 2, pa.date32())],
    schema=spark_schema(a=LongType(), b=LongType(), s=StringType(), d=DateType()),
)
COMMANDS = make_commands()
UDFS = [
    {"functions": [0], "args": [0, 1]},  # add(a, b)
    {"functions": [1, 2], "args": [0]},  # describe(pair(a)): the tuple as it is
    {"functions": [2], "args": [2], "kwargs": {"suffix": 2}},  # describe(s, suffix=s)
    {"functions": [3], "args": [3]},  # day_after(d)
]
OUTPUT = spark_schema(_0=LongType(), _1=StringType(), _2=StringType(), _3=DateType())
EXPECTED = [
    [11, 22],
    ["tuple:(1, 1)!", "tuple:(2, 2)!"],
    ["str:'x'x", "str:'y'y"],
    [datetime.date(2024, 2, 29)] * 2,
]


def test_a_bundle_evaluates_each_udf_its_chains_and_keyword_arguments_as_pyspark_does():
    body = bundle_bytes(UDFS, COMMANDS)
    bundle = read_bundle(body, digest_of(body), _load_command)
    spec = StreamSpec("scalar_row", INPUT.schema, OUTPUT, False, [])
    (result,) = BUNDLE_KINDS["scalar_row"](bundle, spec, iter([INPUT]))
    assert result.schema.equals(OUTPUT)
    assert [column.to_pylist() for column in result.columns] == EXPECTED


def test_a_pandas_bundle_passes_an_inner_udfs_series_to_the_outer_one():
    def doubled(series):
        return series * 2

    def plus(series, other):
        return series + other

    body = bundle_bytes(
        [{"functions": [0, 0], "args": [0]}, {"functions": [1], "args": [1], "kwargs": {"other": 0}}],
        [(doubled, LongType()), (plus, LongType())],
    )
    bundle = read_bundle(body, digest_of(body), _load_command)
    output = spark_schema(_0=LongType(), _1=LongType())
    spec = StreamSpec("scalar_pandas", INPUT.schema, output, False, [])
    (result,) = BUNDLE_KINDS["scalar_pandas"](bundle, spec, iter([INPUT]))
    assert [column.to_pylist() for column in result.columns] == [[4, 8], [11, 22]]


def test_the_service_evaluates_a_bundle_sent_in_place_of_a_function(service):
    body = bundle_bytes(UDFS, COMMANDS)
    conn = connect(service, body_limit=1 << 28)
    try:
        send_open(conn, digest=digest_of(body), envelope=body, input_schema=INPUT.schema, output_schema=OUTPUT)
        assert conn.recv(30)[0] == "ready"
        conn.send_batch(0, INPUT, 30)
        conn.send_end(1, 30)
        messages = [conn.recv(30)]
        while messages[-1][0] != "status":
            messages.append(conn.recv(30))
    finally:
        conn.close()
    assert messages[-1][1] == "ok", messages[-1]
    (batch,) = [m[2] for m in messages if m[0] == "batch"]
    assert [column.to_pylist() for column in batch.columns] == EXPECTED


def refused(body: bytes, digest: str | None = None):
    with pytest.raises(BundleError) as refusal:
        read_bundle(body, digest or digest_of(body), _load_command)
    return str(refusal.value)


def test_refused_bundles_say_why():
    body = bundle_bytes(UDFS, COMMANDS)
    assert "not the digest" in refused(body, digest_of(body + b"x"))
    assert "cut short" in refused(body[:10])
    assert "ends inside a command" in refused(body[:-5])
    assert "follow the bundle's last command" in refused(body + b"\0")
    assert "not JSON" in refused(b"FPBUNDLE" + struct.pack("<I", 3) + b"{x}" + struct.pack("<I", 0))
    assert "no list of udfs" in refused(bundle_bytes([], COMMANDS))
    assert "malformed" in refused(bundle_bytes([{"functions": [9], "args": [0]}], COMMANDS))
    assert "no functions" in refused(bundle_bytes([{"functions": [], "args": [0]}], COMMANDS))
    assert "not a PySpark UDF command" in refused(bundle_bytes([{"functions": [0], "args": [0]}], [COMMANDS[0][0]]))


def test_a_bundle_whose_arguments_are_not_input_columns_is_refused():
    body = bundle_bytes([{"functions": [0], "args": [0, 7]}], COMMANDS)
    bundle = read_bundle(body, digest_of(body), _load_command)
    with pytest.raises(BundleError, match=r"argument columns \[7\]"):
        bundle.check_columns(4)
