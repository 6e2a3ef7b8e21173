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
