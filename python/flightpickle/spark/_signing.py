"""The UDF command signing key, derived on a Spark Connect client.

A classic driver gets the application's signing key from the plugin jar
through py4j. A Connect client has no view of the server's JVM, so a client
that must sign (the server sets ``spark.flightpickle.requireSigned=true``)
derives the same key from the same secret: the server's
``spark.flightpickle.signing.secret``, given to the client in
``FLIGHTPICKLE_SIGNING_SECRET``. The derivation is the plugin's
(``CommandSigning`` in the jar): HMAC-SHA-256 of a fixed label, keyed with the
secret, as hex text; the key id is the one the plugin gives a key derived from
that conf.
"""

from __future__ import annotations

import hashlib
import hmac
import os

SECRET_ENV = "FLIGHTPICKLE_SIGNING_SECRET"
CONFIGURED_KEY_ID = "flightpickle-conf"
_LABEL = b"flightpickle UDF command signing key, version 1"


def derive_key(secret: str) -> str:
    """The signing key for ``secret``, the same text the plugin derives."""
    return hmac.new(secret.encode("utf-8"), _LABEL, hashlib.sha256).hexdigest()


def key_from_environment() -> tuple[str, str] | None:
    """(key id, key) from ``FLIGHTPICKLE_SIGNING_SECRET``, or None when it is unset or empty."""
    secret = os.environ.get(SECRET_ENV)
    if not secret:
        return None
    return CONFIGURED_KEY_ID, derive_key(secret)
