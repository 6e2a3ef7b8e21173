"""What the flightpickle plugin jar tells the driver's Python.

The driver plugin (``io.flightpickle.spark.FlightPicklePlugin``) validates the
``spark.flightpickle.*`` confs and, when commands must be signed, derives the
signing key from a secret in the driver's conf. It hands the key over through
py4j rather than a conf, so the key never shows in the UI or the event log.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

PLUGIN_CLASS = "io.flightpickle.spark.FlightPicklePlugin"
PYTHON_ENABLED_CONF = "spark.flightpickle.python.enabled"
REQUIRE_SIGNED_CONF = "spark.flightpickle.requireSigned"
ALLOWED_MODULES_CONF = "spark.flightpickle.allowedModules"


@dataclass(frozen=True)
class PluginSettings:
    """How the plugin wants this driver's commands written.

    ``signing_key`` is ``(key id, key)`` or None; ``inline_commands`` keeps large
    commands out of broadcasts, whose content the JVM's checks cannot read.
    """

    signing_key: tuple[str, str] | None
    inline_commands: bool


def plugin_settings(context: Any) -> PluginSettings:
    """The settings for a SparkContext; a context without the plugin gets the defaults."""
    conf = context.getConf()
    require_signed = (conf.get(REQUIRE_SIGNED_CONF, None) or "false").strip().lower() == "true"
    checks = require_signed or conf.get(ALLOWED_MODULES_CONF, None) is not None
    key = _signing_key(context)
    if require_signed and key is None:
        raise RuntimeError(
            f"{REQUIRE_SIGNED_CONF}=true, but the flightpickle plugin gave this driver no signing key: "
            f"add the plugin jar with --jars and spark.plugins={PLUGIN_CLASS}"
        )
    return PluginSettings(key, checks)


def switched_on(context: Any) -> bool:
    """The driver plugin (or the user) asked this driver's Python to use flightpickle."""
    value = context.getConf().get(PYTHON_ENABLED_CONF, None) or "false"
    return value.strip().lower() == "true"


def _signing_key(context: Any) -> tuple[str, str] | None:
    from py4j.protocol import Py4JError

    try:
        key = context._jvm.io.flightpickle.spark.FlightPicklePlugin.commandSigningKey()
    except (Py4JError, TypeError):
        # TypeError: without the jar, py4j resolves the name to a package, which is not callable.
        return None
    return None if key is None else (str(key[0]), str(key[1]))
