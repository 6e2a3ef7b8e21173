"""A Spark Connect client derives the signing key the plugin derives, from the same secret."""

from __future__ import annotations

import io
import pickle

import pytest

import flightpickle.spark
from flightpickle import sealing
from flightpickle.spark import _driver, _signing

# The same vector is checked against the plugin's derivation in
# jvm/src/test/java/io/flightpickle/spark/CommandSigningTest.java.
VECTOR_SECRET = "shared test vector secret"
VECTOR_KEY = "50ac1cd1d3d917a522cb55c055f15bd57662d9399ea95aa438e35f9f0b8e6456"


def test_the_derivation_matches_the_plugins():
    assert _signing.derive_key(VECTOR_SECRET) == VECTOR_KEY


def test_the_secret_comes_from_the_environment(monkeypatch):
    monkeypatch.delenv(_signing.SECRET_ENV, raising=False)
    assert _signing.key_from_environment() is None
    monkeypatch.setenv(_signing.SECRET_ENV, "")
    assert _signing.key_from_environment() is None
    monkeypatch.setenv(_signing.SECRET_ENV, VECTOR_SECRET)
    assert _signing.key_from_environment() == ("flightpickle-conf", VECTOR_KEY)


def test_a_sessionless_enable_signs_commands_with_the_derived_key(monkeypatch):
    monkeypatch.setenv(_signing.SECRET_ENV, VECTOR_SECRET)
    monkeypatch.delenv(sealing.KEY_ENV, raising=False)
    try:
        flightpickle.spark.enable()
        frame = sealed_frame(_driver._dumps_connect_command((lambda n: n + 1, "long")))
    finally:
        flightpickle.spark.disable()
    assert sealing.read_header(frame).key_id == "flightpickle-conf"
    func, _ = sealing.unseal(frame, key=VECTOR_KEY, key_id="flightpickle-conf", require_signature=True)
    assert func(1) == 2
    with pytest.raises(sealing.BadSignatureError):
        sealing.unseal(frame, key=_signing.derive_key("another secret"), key_id="flightpickle-conf")


def test_unsealed_commands_cannot_be_signed(monkeypatch):
    monkeypatch.setenv(_signing.SECRET_ENV, VECTOR_SECRET)
    with pytest.raises(ValueError, match="FLIGHTPICKLE_SIGNING_SECRET asks for signed commands"):
        flightpickle.spark.enable(target="pyspark", seal=False)
    assert not flightpickle.spark.is_enabled()


class _FrameOfCommand(pickle.Unpickler):
    """Reads a sealed command's frame without opening it: ``load_sealed`` only hands the frame back."""

    def find_class(self, module, name):
        if (module, name) == ("flightpickle.sealing", "load_sealed"):
            return lambda frame, cache=True: frame
        raise pickle.UnpicklingError(f"a sealed command names only load_sealed, not {module}.{name}")


def sealed_frame(command: bytes) -> bytes:
    return _FrameOfCommand(io.BytesIO(command)).load()
