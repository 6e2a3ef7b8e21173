"""The driver-side hook: PySpark's command pickling, done by flightpickle.

PySpark pickles every UDF and RDD function in one place,
``pyspark.core.rdd._prepare_for_python_RDD``; ``pyspark.sql.udf`` imports it
from that module at call time and RDDs look it up as a module global, so
replacing the module attribute reaches both.
"""

from __future__ import annotations

import pickle
import sys
import threading
from dataclasses import dataclass
from typing import Any

import flightpickle


@dataclass(frozen=True)
class CommandStats:
    """What the hook has pickled in this driver process since it was enabled."""

    commands: int
    payload_bytes: int
    broadcast_commands: int


_lock = threading.Lock()
_original_prepare = None
_commands = 0
_payload_bytes = 0
_broadcast_commands = 0


def enable(spark: Any = None) -> None:
    """Pickle every UDF and RDD command of this driver with flightpickle.

    ``spark`` (a SparkSession or SparkContext) is accepted for symmetry with the
    rest of PySpark's API and is not needed: the hook is process-wide, like
    PySpark's own pickler. Enabling twice is harmless.
    """
    global _original_prepare
    rdd_module = _rdd_module()
    with _lock:
        if _original_prepare is None:
            _original_prepare = rdd_module._prepare_for_python_RDD
            rdd_module._prepare_for_python_RDD = _prepare_with_flightpickle
            _reset_counters()


def disable() -> None:
    """Restore PySpark's own command pickling."""
    global _original_prepare
    with _lock:
        if _original_prepare is not None:
            _rdd_module()._prepare_for_python_RDD = _original_prepare
            _original_prepare = None


def is_enabled() -> bool:
    return _original_prepare is not None


def stats() -> CommandStats:
    with _lock:
        return CommandStats(_commands, _payload_bytes, _broadcast_commands)


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
    them once per executor instead of carrying them in every task.
    """
    pickled = _dumps_command(command)
    broadcast = len(pickled) > sc._jvm.PythonUtils.getBroadcastThreshold(sc._jsc)
    if broadcast:
        pickled = _dumps_command(sc.broadcast(pickled))
    _count(len(pickled), broadcast)
    broadcast_vars = [b._jbroadcast for b in sc._pickled_broadcast_vars]
    sc._pickled_broadcast_vars.clear()
    return pickled, broadcast_vars, sc.environment, sc._python_includes


def _dumps_command(command) -> bytes:
    """Pickle a command, reporting failures the way PySpark users know them."""
    try:
        return flightpickle.dumps(command, pickle.HIGHEST_PROTOCOL)
    except pickle.PickleError:
        raise
    except Exception as error:
        raise pickle.PicklingError(
            f"Could not serialize object: {type(error).__name__}: {error}"
        ) from error


def _count(size: int, broadcast: bool) -> None:
    global _commands, _payload_bytes, _broadcast_commands
    with _lock:
        _commands += 1
        _payload_bytes += size
        _broadcast_commands += broadcast
