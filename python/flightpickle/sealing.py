"""Sealed payloads: pickles in a frame that is checked before anything is unpickled.

The frame (its byte layout is in ``src/envelope/FORMAT.md``) records which
Python wrote the pickle, a SHA-256 digest, and optionally an HMAC-SHA-256
signature; large payloads are zstd-compressed. ``unseal`` verifies all of it
in the Rust core and refuses, with an exception of its own per reason, before
``pickle.loads`` ever sees the bytes.

Keys: pass ``key=`` (and ``key_id=``), or set ``FLIGHTPICKLE_KEY`` (and
``FLIGHTPICKLE_KEY_ID``) in the environment. Whenever a key is known, ``seal``
signs and ``unseal`` requires a valid signature.

``embed(obj)`` returns an object that pickles as a call to ``load_sealed`` on
the sealed frame, so a sealed payload can travel inside an ordinary pickle (a
PySpark command, for one). ``load_sealed`` is a reconstructor: its name,
``flightpickle.sealing.load_sealed``, is part of the wire format.
"""

from __future__ import annotations

import os
import pickle
import sys
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from . import _native

__all__ = [
    "BadSignatureError",
    "DecompressionError",
    "DigestMismatchError",
    "MalformedPayloadError",
    "NotSealedError",
    "PayloadTooLargeError",
    "PythonVersionMismatchError",
    "Sealed",
    "SealedHeader",
    "SealedPayloadError",
    "SignatureMissingError",
    "TruncatedPayloadError",
    "UnknownFormatVersionError",
    "UnknownKeyError",
    "cache_info",
    "embed",
    "load_sealed",
    "observe_cache",
    "read_header",
    "seal",
    "seal_pickled",
    "unseal",
]

KEY_ENV = "FLIGHTPICKLE_KEY"
KEY_ID_ENV = "FLIGHTPICKLE_KEY_ID"
DEFAULT_KEY_ID = "default"
DEFAULT_COMPRESS_THRESHOLD = 64 * 1024
DEFAULT_COMPRESSION_LEVEL = 3
DEFAULT_MAX_SIZE = 1 << 30
CACHE_SIZE = 128
_MISSING = object()


class SealedPayloadError(pickle.UnpicklingError):
    """A sealed payload was refused before unpickling; the message says what to do."""


class NotSealedError(SealedPayloadError):
    """The bytes are not a sealed payload (wrong magic)."""


class TruncatedPayloadError(SealedPayloadError):
    """The frame ends before the data it declares."""


class MalformedPayloadError(SealedPayloadError):
    """A field holds a value no writer produces, or bytes trail the frame."""


class UnknownFormatVersionError(SealedPayloadError):
    """The frame was written by a format version this flightpickle does not read."""


class PayloadTooLargeError(SealedPayloadError):
    """The declared payload is over the size limit (a decompression bomb, perhaps)."""


class SignatureMissingError(SealedPayloadError):
    """A signature is required and the frame has none."""


class UnknownKeyError(SealedPayloadError):
    """The frame is signed with a key id this reader has no key for."""


class BadSignatureError(SealedPayloadError):
    """The signature does not match: tampered with, or signed with another key."""


class PythonVersionMismatchError(SealedPayloadError):
    """The pickle was written by another Python version than this one."""


class DecompressionError(SealedPayloadError):
    """The compressed body does not decompress to the declared size."""


class DigestMismatchError(SealedPayloadError):
    """The payload does not match its digest: it was corrupted."""


_REFUSALS = {
    "not_sealed": NotSealedError,
    "truncated": TruncatedPayloadError,
    "malformed": MalformedPayloadError,
    "unknown_format_version": UnknownFormatVersionError,
    "too_large": PayloadTooLargeError,
    "signature_missing": SignatureMissingError,
    "unknown_key": UnknownKeyError,
    "bad_signature": BadSignatureError,
    "python_mismatch": PythonVersionMismatchError,
    "decompression": DecompressionError,
    "digest_mismatch": DigestMismatchError,
}


@dataclass(frozen=True)
class SealedHeader:
    """What a frame says about its payload (read, not verified, by ``read_header``)."""

    format_version: int
    python: tuple[str, int, int]
    target: str
    protocol: int
    writer_version: str
    compressed: bool
    payload_size: int
    body_size: int
    digest: str
    key_id: str | None


def seal(
    obj,
    *,
    key: str | bytes | None = None,
    key_id: str | None = None,
    target: str | None = None,
    protocol: int | None = None,
    compress_threshold: int | None = DEFAULT_COMPRESS_THRESHOLD,
    compression_level: int = DEFAULT_COMPRESSION_LEVEL,
) -> bytes:
    """Pickle ``obj`` with flightpickle and seal it.

    ``compress_threshold=None`` never compresses; payloads of at least that
    many bytes are compressed otherwise.
    """
    import flightpickle

    protocol = flightpickle.DEFAULT_PROTOCOL if protocol is None else protocol
    target = target or flightpickle.get_default_target()
    pickled = flightpickle.dumps(obj, protocol=protocol, target=target)
    return seal_pickled(
        pickled,
        protocol=protocol,
        target=target,
        key=key,
        key_id=key_id,
        compress_threshold=compress_threshold,
        compression_level=compression_level,
    )


def seal_pickled(
    pickled: bytes,
    *,
    protocol: int,
    target: str,
    key: str | bytes | None = None,
    key_id: str | None = None,
    compress_threshold: int | None = DEFAULT_COMPRESS_THRESHOLD,
    compression_level: int = DEFAULT_COMPRESSION_LEVEL,
) -> bytes:
    """Seal bytes that flightpickle already pickled with ``protocol`` for ``target``."""
    import flightpickle

    signing = _signing_key(key, key_id)
    try:
        return _native.seal_pickle(
            pickled,
            python=_this_python(),
            target=target,
            protocol=protocol,
            writer_version=flightpickle.__version__,
            compression_threshold=compress_threshold,
            compression_level=compression_level,
            key_id=signing[0] if signing else None,
            key=signing[1] if signing else None,
        )
    except _native.EnvelopeRefusal as refusal:
        raise ValueError(refusal.args[1]) from None


def unseal(
    data: bytes,
    *,
    key: str | bytes | None = None,
    key_id: str | None = None,
    keys: dict[str, str | bytes] | None = None,
    require_signature: bool | None = None,
    check_python: bool = True,
    max_size: int = DEFAULT_MAX_SIZE,
):
    """Verify a sealed payload, then unpickle it.

    ``require_signature`` defaults to whether any key is known (argument or
    environment). ``check_python=False`` skips the Python version check, for
    payloads known to hold no code.
    """
    pickled, _ = _open(data, key, key_id, keys, require_signature, check_python, max_size)
    return pickle.loads(pickled)


def read_header(data: bytes) -> SealedHeader:
    """A frame's header, without verifying its signature or digest."""
    try:
        return SealedHeader(**_native.read_header(_as_bytes(data)))
    except _native.EnvelopeRefusal as refusal:
        raise _refusal_error(refusal) from None


class Sealed:
    """A sealed payload that pickles as a call to ``load_sealed``.

    ``cache=False`` makes every load unpickle the payload again: for payloads
    whose unpickling has effects that must happen each time (PySpark
    accumulators register themselves with the task that loads them).
    """

    __slots__ = ("frame", "cache")

    def __init__(self, frame: bytes, cache: bool = True):
        self.frame = frame
        self.cache = cache

    def __reduce__(self):
        return (load_sealed, (self.frame,)) if self.cache else (load_sealed, (self.frame, False))

    def __repr__(self):
        return f"<Sealed {len(self.frame)} bytes{'' if self.cache else ', uncached'}>"


def embed(obj, *, cache: bool = True, **seal_options) -> Sealed:
    """Seal ``obj`` so that it can travel inside an ordinary pickle."""
    return Sealed(seal(obj, **seal_options), cache)


_cache: OrderedDict[str, object] = OrderedDict()
_cache_lock = threading.Lock()
_cache_hits = 0
_cache_misses = 0
# Told the counts after each cached open; see ``observe_cache``.
_cache_observer: Callable[[int, int], None] | None = None


def load_sealed(frame: bytes, cache: bool = True):
    """Reconstructor of an embedded sealed payload, with keys from the environment.

    The frame is verified every time; with ``cache``, unpickling is skipped
    when this process already opened a payload with the same digest, so a
    reused worker takes the same function from its cache.
    """
    global _cache_hits, _cache_misses
    pickled, header = _open(frame, None, None, None, None, True, DEFAULT_MAX_SIZE)
    if not cache:
        return pickle.loads(pickled)
    digest = header["digest"]
    with _cache_lock:
        cached = _cache.get(digest, _MISSING)
        if cached is not _MISSING:
            _cache.move_to_end(digest)
            _cache_hits += 1
        else:
            _cache_misses += 1
    if cached is not _MISSING:
        _tell_cache_observer()
        return cached
    obj = pickle.loads(pickled)
    with _cache_lock:
        _cache[digest] = obj
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
    _tell_cache_observer()
    return obj


def observe_cache(observer: Callable[[int, int], None] | None) -> None:
    """Have ``observer(hits, misses)`` called after each cached open (None stops it).

    The Spark daemon uses it to leave each worker's counts where its executor's
    plugin reads them. The observer runs outside the cache's lock and must not raise.
    """
    global _cache_observer
    _cache_observer = observer


def _tell_cache_observer() -> None:
    observer = _cache_observer
    if observer is not None:
        observer(_cache_hits, _cache_misses)


def cache_info() -> dict[str, int]:
    """Hits, misses and current size of this process's cache of opened payloads."""
    with _cache_lock:
        return {"hits": _cache_hits, "misses": _cache_misses, "size": len(_cache)}


def _open(data, key, key_id, keys, require_signature, check_python, max_size):
    frame = _as_bytes(data)
    ring = _keyring(key, key_id, keys)
    if require_signature is None:
        require_signature = bool(ring)
    try:
        header, body_start, decompressed = _native.open_frame(
            frame,
            keys=ring,
            require_signature=require_signature,
            expected_python=_this_python() if check_python else None,
            max_payload_len=max_size,
        )
    except _native.EnvelopeRefusal as refusal:
        raise _refusal_error(refusal) from None
    pickled = decompressed if decompressed is not None else memoryview(frame)[body_start:]
    return pickled, header


def _keyring(key, key_id, keys) -> dict[str, bytes]:
    ring = {name: _secret(secret) for name, secret in (keys or {}).items()}
    signing = _signing_key(key, key_id)
    if signing:
        ring[signing[0]] = signing[1]
    return ring


def _signing_key(key, key_id) -> tuple[str, bytes] | None:
    """The key given, else the one in the environment, else None."""
    if key is None:
        key = os.environ.get(KEY_ENV) or None
        key_id = key_id or os.environ.get(KEY_ID_ENV)
    if key is None:
        return None
    return (key_id or DEFAULT_KEY_ID, _secret(key))


def _secret(key: str | bytes) -> bytes:
    secret = key.encode() if isinstance(key, str) else bytes(key)
    if not secret:
        raise ValueError("a signing key must not be empty")
    return secret


def _as_bytes(data) -> bytes:
    return data if isinstance(data, bytes) else bytes(data)


def _this_python() -> tuple[str, int, int]:
    return (sys.implementation.name, sys.version_info.major, sys.version_info.minor)


def _refusal_error(refusal) -> SealedPayloadError:
    kind, message = refusal.args
    return _REFUSALS.get(kind, SealedPayloadError)(message)
