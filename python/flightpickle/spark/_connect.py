"""The Spark Connect client's command pickling, done by flightpickle.

A Connect client pickles commands itself and sends the bytes in the plan; the
server hands them to Python workers as they are. Two client modules do the
pickling, each through its own module-level name ``CloudPickleSerializer``:

- ``pyspark.sql.connect.expressions``: ``PythonUDF.to_plan``, which every UDF
  goes through (``udf``, ``pandas_udf``, ``mapInPandas``/``mapInArrow``,
  ``applyInPandas``, cogroups, ``spark.udf.register``);
- ``pyspark.sql.connect.plan``: ``PythonUDTF.to_plan`` (UDTFs) and
  ``PythonDataSource.to_plan`` (data sources, as in classic mode, where they
  share the UDF path);
- ``pyspark.sql.connect.streaming.readwriter``: streaming ``foreach`` and
  ``foreachBatch`` functions, which the server runs in Python processes of its
  own that load them with ``pickle.loads``, as workers do.

Rebinding that name in those modules, and nowhere else, routes exactly
these commands through flightpickle; everything else keeps PySpark's
serializer, whose ``loads`` and other methods the replacement inherits.
Streaming query listeners run on the client and are not pickled.

There is no broadcast in Connect: a large command travels inlined in every
task, and the worker's digest cache is what spares it the unpickling.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable

PICKLING_MODULES = (
    "pyspark.sql.connect.expressions",
    "pyspark.sql.connect.plan",
    "pyspark.sql.connect.streaming.readwriter",
)
SERIALIZER_NAME = "CloudPickleSerializer"

# The serializer each patched module held before, to put back on uninstall.
_originals: dict[str, type] = {}


def install(dump_command: Callable[[object], bytes]) -> bool:
    """Make the Connect client pickle commands with ``dump_command``.

    Returns False, patching nothing, when the Connect client is not in use in
    this process (see ``client_in_use``). Installing again only replaces the
    dump function.
    """
    if not client_in_use():
        return False
    for name in PICKLING_MODULES:
        module = importlib.import_module(name)
        original = _originals.setdefault(name, getattr(module, SERIALIZER_NAME))
        setattr(module, SERIALIZER_NAME, _command_serializer(original, dump_command))
    return True


def uninstall() -> None:
    """Put PySpark's own serializer back wherever ``install`` replaced it."""
    for name, original in list(_originals.items()):
        setattr(sys.modules[name], SERIALIZER_NAME, original)
        del _originals[name]


def client_in_use() -> bool:
    """Whether this process uses, or is set up to use, Spark Connect.

    A Connect session has loaded the client modules; ``SPARK_REMOTE`` or
    ``SPARK_CONNECT_MODE_ENABLED`` say one is coming. Otherwise the client is
    left unloaded: importing it costs seconds (gRPC, protobuf) that a classic
    driver has no use for.
    """
    if all(name in sys.modules for name in PICKLING_MODULES):
        return True
    try:
        from pyspark.sql.utils import is_remote
    except ImportError:
        return False
    if not is_remote() and "SPARK_REMOTE" not in os.environ:
        return False
    try:
        for name in PICKLING_MODULES:
            importlib.import_module(name)
    except ImportError:  # the Connect extras (grpcio and friends) are not installed
        return False
    return True


def is_connect_session(spark) -> bool:
    """A Spark Connect session, whose confs are read through the server."""
    return type(spark).__module__.startswith("pyspark.sql.connect.")


def _command_serializer(original: type, dump_command: Callable[[object], bytes]) -> type:
    """A subclass of PySpark's serializer whose ``dumps`` is ``dump_command``."""

    class FlightpickleCommandSerializer(original):
        def dumps(self, obj) -> bytes:
            return dump_command(obj)

    FlightpickleCommandSerializer.__qualname__ = FlightpickleCommandSerializer.__name__
    return FlightpickleCommandSerializer
