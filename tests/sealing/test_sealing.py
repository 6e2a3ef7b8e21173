"""Sealed payloads: round trips, and every refusal before anything is unpickled."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys

import pytest

import flightpickle
from flightpickle import _native, sealing

SCALE = 7


def scaled(x):
    return x * SCALE


def frame_from(python=("cpython", 3, 11), **overrides):
    """A frame sealed by the core with a chosen writer Python."""
    options = dict(
        python=python,
        target="native",
        protocol=5,
        writer_version="0.1.0",
        compression_threshold=None,
        compression_level=3,
    )
    options.update(overrides)
    return _native.seal_pickle(pickle.dumps([1, 2, 3]), **options)


def test_plain_round_trip_of_a_function():
    frame = flightpickle.seal(lambda x: scaled(x) + 1)
    assert frame.startswith(b"\x89FPK")
    assert flightpickle.unseal(frame)(2) == 15
    header = sealing.read_header(frame)
    assert header.python == (sys.implementation.name, *sys.version_info[:2])
    assert (header.target, header.compressed, header.key_id) == ("native", False, None)


def test_large_payloads_are_compressed():
    data = [f"row {i % 1000}" for i in range(50_000)]  # repetitive, like real tables
    frame = flightpickle.seal(data)
    header = sealing.read_header(frame)
    assert header.compressed and header.body_size < header.payload_size / 2
    assert flightpickle.unseal(frame) == data
    assert not sealing.read_header(flightpickle.seal(data, compress_threshold=None)).compressed


def test_signed_round_trip():
    frame = flightpickle.seal(scaled, key="secret", key_id="team")
    assert sealing.read_header(frame).key_id == "team"
    assert flightpickle.unseal(frame, key="secret", key_id="team")(3) == 21
    assert flightpickle.unseal(frame, keys={"team": b"secret"})(1) == 7


def test_every_single_byte_flip_of_a_signed_payload_is_refused():
    frame = flightpickle.seal(scaled, key="secret")
    for at in range(len(frame)):
        tampered = bytearray(frame)
        tampered[at] ^= 0x01
        with pytest.raises(sealing.SealedPayloadError):
            flightpickle.unseal(bytes(tampered), key="secret")


@pytest.mark.parametrize(
    "damage, error, words",
    [
        (lambda f: b"\x80\x05" + f[2:], sealing.NotSealedError, "not a sealed flightpickle payload"),
        (lambda f: f[:-5], sealing.TruncatedPayloadError, "truncated"),
        (lambda f: f[:4] + b"\x09" + f[5:], sealing.UnknownFormatVersionError, "format version 9"),
        (lambda f: f[:-1] + bytes([f[-1] ^ 0xFF]), sealing.DigestMismatchError, "digest"),
        (lambda f: f + b"!", sealing.MalformedPayloadError, "unexpected bytes"),
    ],
    ids=["magic", "truncated", "version", "digest", "trailing"],
)
def test_damaged_frames_are_refused_with_their_own_error(damage, error, words):
    frame = flightpickle.seal(scaled)
    with pytest.raises(error, match=words):
        flightpickle.unseal(damage(frame))


def test_python_version_mismatch_names_both_versions():
    other = (3, 12) if sys.version_info[:2] != (3, 12) else (3, 11)
    frame = frame_from(python=("cpython", *other))
    this = f"{sys.version_info.major}.{sys.version_info.minor}"
    message = f"pickled on CPython {other[0]}.{other[1]}, this is CPython {this}"
    with pytest.raises(sealing.PythonVersionMismatchError, match=message):
        flightpickle.unseal(frame)
    assert flightpickle.unseal(frame, check_python=False) == [1, 2, 3]


def test_signature_refusals():
    unsigned = flightpickle.seal(scaled)
    with pytest.raises(sealing.SignatureMissingError, match="not signed"):
        flightpickle.unseal(unsigned, key="secret")
    signed_by_other = flightpickle.seal(scaled, key="secret", key_id="other")
    with pytest.raises(sealing.UnknownKeyError, match='signed with key "other"'):
        flightpickle.unseal(signed_by_other, key="secret", key_id="mine")
    forged = flightpickle.seal(scaled, key="guess", key_id="mine")
    with pytest.raises(sealing.BadSignatureError):
        flightpickle.unseal(forged, key="secret", key_id="mine")


def test_declared_size_over_the_limit_is_refused():
    frame = flightpickle.seal(list(range(100_000)))
    with pytest.raises(sealing.PayloadTooLargeError, match="over the limit of 1000"):
        flightpickle.unseal(frame, max_size=1000)


def test_refusals_are_unpickling_errors():
    for error in sealing._REFUSALS.values():
        assert issubclass(error, sealing.SealedPayloadError)
        assert issubclass(error, pickle.UnpicklingError)


def test_keys_come_from_the_environment():
    script = (
        "import sys, flightpickle\n"
        "if sys.argv[1] == 'seal':\n"
        "    sys.stdout.buffer.write(flightpickle.seal(lambda: 'sealed'))\n"
        "else:\n"
        "    try:\n"
        "        print(flightpickle.unseal(sys.stdin.buffer.read())())\n"
        "    except flightpickle.SealedPayloadError as e:\n"
        "        print(type(e).__name__)\n"
    )

    def run(mode, key, stdin=b""):
        env = {**os.environ, "FLIGHTPICKLE_KEY": key, "FLIGHTPICKLE_KEY_ID": "cluster"}
        done = subprocess.run(
            [sys.executable, "-c", script, mode], input=stdin, env=env, capture_output=True, check=True
        )
        return done.stdout

    frame = run("seal", "shared")
    assert sealing.read_header(frame).key_id == "cluster"
    assert run("open", "shared", frame).strip() == b"sealed"
    assert run("open", "wrong", frame).strip() == b"BadSignatureError"


def test_embedded_payload_loads_with_plain_pickle_in_a_fresh_interpreter():
    offset = 1  # a closure: it travels by value, unlike this module's functions
    command = pickle.dumps((sealing.embed(lambda x: x * 7 - offset), "returnType"))
    script = (
        "import pickle, sys\n"
        "data = sys.stdin.buffer.read()\n"
        "first, second = pickle.loads(data), pickle.loads(data)\n"
        "from flightpickle import sealing\n"
        "print(first[0](6), first[1], first[0] is second[0], sealing.cache_info())\n"
    )
    out = subprocess.run(
        [sys.executable, "-I", "-c", script], input=command, capture_output=True, check=True
    ).stdout.decode()
    assert out.strip() == "41 returnType True {'hits': 1, 'misses': 1, 'size': 1}"


def test_embedded_payload_still_checks_its_frame():
    embedded = sealing.embed(scaled)
    command = bytearray(pickle.dumps(embedded))
    command[command.index(embedded.frame) + len(embedded.frame) // 2] ^= 0x01
    with pytest.raises(sealing.SealedPayloadError):
        pickle.loads(bytes(command))


def test_seal_refuses_an_empty_key():
    with pytest.raises(ValueError, match="must not be empty"):
        flightpickle.seal(scaled, key="")


def test_uncached_payload_is_unpickled_on_every_load():
    cached = pickle.dumps(sealing.embed([1, 2]))
    uncached = pickle.dumps(sealing.embed([1, 2], cache=False))
    assert pickle.loads(cached) is pickle.loads(cached)
    first, second = pickle.loads(uncached), pickle.loads(uncached)
    assert first == second == [1, 2] and first is not second
