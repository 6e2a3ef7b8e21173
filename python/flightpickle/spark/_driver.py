"""The driver-side hook: PySpark's command pickling, done by flightpickle.

PySpark pickles every UDF and RDD function in one place,
``pyspark.core.rdd._prepare_for_python_RDD``; ``pyspark.sql.udf`` imports it
from that module at call time and RDDs look it up as a module global, so
replacing the module attribute reaches both. A Spark Connect client pickles
its commands elsewhere; ``_connect`` hooks that path with the same settings.

A command travels in one of two forms:
- sealed (the default): a small ordinary pickle that calls
  ``flightpickle.sealing.load_sealed`` on a sealed payload, so workers check
  the Python version and digest (and the signature, with a key) before
  unpickling, and a reused worker takes an already opened command from its
  cache instead of unpickling it again;
- ``target="pyspark"``: a plain pickle naming only PySpark's own
  reconstructors, for clusters whose executors cannot install flightpickle.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import pickle
import threading
from dataclasses import dataclass
from typing import Any

import flightpickle
from flightpickle import _native, sealing
from flightpickle.spark import _connect, _local_modules, _plugin, _signing

TARGET_CONF = "spark.flightpickle.target"
PICKLE_BY_VALUE_CONF = "spark.flightpickle.pickleByValue"
PICKLE_LOCAL_MODULES_CONF = "spark.flightpickle.pickleLocalModules"
TARGETS = ("native", "pyspark")
# Reconstructors with an effect per task: an accumulator registers itself with
# the task that loads it, so a command holding one must be unpickled every time.
_PER_TASK_RECONSTRUCTORS = frozenset(
    {"pyspark.accumulators._deserialize_accumulator", "pyspark.core.broadcast._from_id"}
)


@dataclass(frozen=True)
class CommandStats:
    """What the hook has pickled in this driver process since it was enabled."""

    commands: int
    payload_bytes: int
    broadcast_commands: int


@dataclass(frozen=True)
class _Settings:
    target: str
    seal: bool
    pickle_local_modules: bool
    # From the plugin jar: (key id, key) to sign commands with, which workers
    # then require; and whether to keep large commands out of broadcasts.
    signing_key: tuple[str, str] | None = None
    inline_commands: bool = False


_lock = threading.Lock()
_original_prepare = None
_settings = _Settings("native", True, False)
_commands = 0
_payload_bytes = 0
_broadcast_commands = 0


def enable(
    spark: Any = None,
    *,
    target: str | None = None,
    seal: bool | None = None,
    pickle_local_modules: bool | None = None,
) -> None:
    """Pickle every UDF and RDD command of this driver with flightpickle.

    With ``spark`` (a SparkSession or SparkContext), the ``spark.flightpickle.*``
    confs give the defaults: ``target`` (``native`` or ``pyspark``),
    ``pickleByValue`` (comma-separated modules to ship by value) and
    ``pickleLocalModules`` (``true`` ships every module the command uses that
    lives outside site-packages and the standard library). Arguments win over
    confs. ``seal`` defaults to true for ``native`` and must be false for
    ``pyspark``, whose stock workers cannot open sealed payloads.
    Enabling again replaces the settings; the hook stays installed once.

    The Spark Connect client is hooked too when this process uses Connect
    (a Connect session exists, or ``SPARK_REMOTE`` is set): pass the Connect
    session, or enable after creating it.
    """
    _enable(spark, target, seal, pickle_local_modules, _refuse_missing_module)


def _enable(spark, target, seal, pickle_local_modules, missing_module) -> None:
    """``enable``, with ``missing_module(name, error)`` deciding about a
    ``pickleByValue`` module the driver cannot import."""
    global _original_prepare, _settings
    conf = _conf_reader(spark)
    settings = _with_plugin_settings(spark, _resolve_settings(conf, target, seal, pickle_local_modules))
    for name in _split_modules(conf(PICKLE_BY_VALUE_CONF)):
        try:
            pickle_by_value(name)
        except ImportError as error:
            missing_module(name, error)
    rdd_module = _rdd_module()
    with _lock:
        _settings = settings
        if _original_prepare is None:
            _original_prepare = rdd_module._prepare_for_python_RDD
            rdd_module._prepare_for_python_RDD = _prepare_with_flightpickle
            _reset_counters()
        _connect.install(_dumps_connect_command)


def _refuse_missing_module(name: str, error: ImportError) -> None:
    raise ImportError(
        f"{PICKLE_BY_VALUE_CONF} names {name!r}, which the driver cannot import: {error}; "
        "ship only modules the driver itself can import"
    ) from error


def disable() -> None:
    """Restore PySpark's own command pickling."""
    global _original_prepare
    with _lock:
        if _original_prepare is not None:
            _rdd_module()._prepare_for_python_RDD = _original_prepare
            _original_prepare = None
        _connect.uninstall()


def is_enabled() -> bool:
    return _original_prepare is not None


def stats() -> CommandStats:
    with _lock:
        return CommandStats(_commands, _payload_bytes, _broadcast_commands)


def pickle_by_value(module) -> None:
    """Ship ``module`` (a module or its dotted name), and its submodules, by value.

    For the user's own modules that executors cannot import: no ``--py-files``.
    """
    if isinstance(module, str):
        module = importlib.import_module(module)
    if module.__name__ not in flightpickle.list_registry_pickle_by_value():
        flightpickle.register_pickle_by_value(module)


def _resolve_settings(conf, target, seal, pickle_local_modules) -> _Settings:
    target = target or conf(TARGET_CONF) or "native"
    if target not in TARGETS:
        raise ValueError(f"unknown flightpickle target for Spark commands {target!r}; use one of {TARGETS}")
    if seal is None:
        seal = target == "native"
    if seal and target != "native":
        raise ValueError(
            "sealed commands need flightpickle on the executors; with target='pyspark' pass seal=False"
        )
    if pickle_local_modules is None:
        pickle_local_modules = (conf(PICKLE_LOCAL_MODULES_CONF) or "false").lower() == "true"
    return _Settings(target, seal, pickle_local_modules)


def _with_plugin_settings(spark, settings: _Settings) -> _Settings:
    # A Connect client has no py4j view of the server's JVM, hence no key from its
    # plugin: it derives the key from the secret it was given, if any.
    if spark is None or _connect.is_connect_session(spark):
        return _signed_with(settings, _signing.key_from_environment(), _signing.SECRET_ENV)
    plugin = _plugin.plugin_settings(getattr(spark, "sparkContext", spark))
    signed = _signed_with(settings, plugin.signing_key, "the flightpickle plugin")
    return dataclasses.replace(signed, inline_commands=plugin.inline_commands)


def _signed_with(settings: _Settings, signing_key, source: str) -> _Settings:
    if signing_key is not None and not settings.seal:
        raise ValueError(f"{source} asks for signed commands, which needs sealed commands (seal=True)")
    return dataclasses.replace(settings, signing_key=signing_key)


def _conf_reader(spark):
    """A function from conf key to value (or None), for a session, a context or nothing."""
    if spark is None:
        return lambda key: None
    if _connect.is_connect_session(spark):  # no SparkContext on a Connect client
        return lambda key: spark.conf.get(key, None)
    context = getattr(spark, "sparkContext", spark)
    conf = context.getConf()
    return lambda key: conf.get(key, None)


def _split_modules(value: str | None) -> list[str]:
    return [name.strip() for name in (value or "").split(",") if name.strip()]


def _rdd_module():
    try:
        import pyspark.core.rdd as rdd_module
    except ImportError as error:
        raise ImportError(
            "flightpickle.spark needs PySpark 4 (pyspark.core.rdd); install pyspark>=4.0"
        ) from error
    return rdd_module


def _reset_counters() -> None:
    global _commands, _payload_bytes, _broadcast_commands
    _commands = _payload_bytes = _broadcast_commands = 0


def _prepare_with_flightpickle(sc, command):
    """Same contract as PySpark's ``_prepare_for_python_RDD``, other pickler.

    Large commands go through a broadcast, as in PySpark, so that tasks fetch
    them once per executor instead of carrying them in every task; not while
    the plugin checks commands, since a broadcast's content is out of its reach.
    With a signing key, the workers get it in their environment and require it.
    """
    settings = _settings
    pickled = _dumps_command(command, settings)
    threshold = sc._jvm.PythonUtils.getBroadcastThreshold(sc._jsc)
    broadcast = not settings.inline_commands and len(pickled) > threshold
    if broadcast:
        # The broadcast object is PySpark's own; only the command needs flightpickle.
        pickled = flightpickle.dumps(sc.broadcast(pickled), pickle.HIGHEST_PROTOCOL, target=settings.target)
    _count(len(pickled), broadcast)
    broadcast_vars = [b._jbroadcast for b in sc._pickled_broadcast_vars]
    sc._pickled_broadcast_vars.clear()
    return pickled, broadcast_vars, _worker_environment(sc.environment, settings), sc._python_includes


def _worker_environment(environment: dict, settings: _Settings) -> dict:
    if settings.signing_key is None:
        return environment
    key_id, key = settings.signing_key
    return {**environment, sealing.KEY_ID_ENV: key_id, sealing.KEY_ENV: key}


def _dumps_connect_command(command) -> bytes:
    """A Spark Connect command: inlined in the plan, never broadcast."""
    pickled = _dumps_command(command, _settings)
    _count(len(pickled), broadcast=False)
    return pickled


def _dumps_command(command, settings: _Settings) -> bytes:
    """Pickle a command in the form the settings ask for."""
    shipping = _local_modules.by_value_while_pickling(command) if settings.pickle_local_modules else None
    with shipping or contextlib.nullcontext():
        try:
            if settings.seal:
                return _sealed_command(command, settings.signing_key)
            return flightpickle.dumps(command, pickle.HIGHEST_PROTOCOL, target=settings.target)
        except pickle.PickleError:
            raise
        except Exception as error:
            raise pickle.PicklingError(
                f"Could not serialize object: {type(error).__name__}: {error}"
            ) from error


def _sealed_command(command, signing_key: tuple[str, str] | None = None) -> bytes:
    """A small pickle calling ``load_sealed`` on the sealed command.

    The Rust inspector tells, without running anything, whether the command
    holds per-task state; only commands without any are cached on workers.
    Without ``signing_key`` the environment's key, if any, signs.
    """
    protocol = pickle.HIGHEST_PROTOCOL
    pickled = flightpickle.dumps(command, protocol, target="native")
    calls = {name for name, _ in _native.inspect_pickle(pickled)["calls"]}
    cacheable = not (calls & _PER_TASK_RECONSTRUCTORS)
    key_id, key = signing_key or (None, None)
    frame = sealing.seal_pickled(pickled, protocol=protocol, target="native", key=key, key_id=key_id)
    return pickle.dumps(sealing.Sealed(frame, cacheable), protocol=protocol)


def _count(size: int, broadcast: bool) -> None:
    global _commands, _payload_bytes, _broadcast_commands
    with _lock:
        _commands += 1
        _payload_bytes += size
        _broadcast_commands += broadcast
