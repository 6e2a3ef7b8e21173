"""PySpark UDF commands as functions the service evaluates.

The Spark plugin's operators send the sealed frame of a UDF's command as it
is: PySpark pickles a SQL UDF's command as the pair ``(func, returnType)``,
and flightpickle's driver hook seals that pair. The service takes such a pair
for its function, which is what ``pyspark.worker`` calls for the kinds the
plugin replaces (``mapInArrow``: the user's function over an iterator of
record batches), and keeps its return type: a command's arguments and results
are converted as PySpark converts them (see :mod:`.spark_kinds`).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SparkCommand:
    """A loaded PySpark UDF command: the user's function and its Spark return type."""

    func: object
    return_type: object


def command_of(loaded) -> SparkCommand | None:
    """The command a loaded ``(func, returnType)`` pair is; None for anything else."""
    if not (isinstance(loaded, tuple) and len(loaded) == 2 and callable(loaded[0])):
        return None
    try:
        from pyspark.sql.types import DataType
    except ImportError:  # no PySpark here, so nothing can be a PySpark command
        return None
    return SparkCommand(loaded[0], loaded[1]) if isinstance(loaded[1], DataType) else None


def function_of(loaded):
    """``func`` for a loaded ``(func, returnType)`` command; anything else unchanged."""
    command = command_of(loaded)
    return loaded if command is None else command.func
