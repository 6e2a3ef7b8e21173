"""PySpark UDF commands as functions the service evaluates.

The Spark plugin's operators send the sealed frame of a UDF's command as it
is: PySpark pickles a SQL UDF's command as the pair ``(func, returnType)``,
and flightpickle's driver hook seals that pair. The service takes such a pair
for its function, which is what ``pyspark.worker`` calls for the kinds the
plugin replaces (``mapInArrow``: the user's function over an iterator of
record batches). The return type is the stream's declared output schema.
"""

from __future__ import annotations


def function_of(loaded):
    """``func`` for a loaded ``(func, returnType)`` command; anything else unchanged."""
    if not (isinstance(loaded, tuple) and len(loaded) == 2 and callable(loaded[0])):
        return loaded
    try:
        from pyspark.sql.types import DataType
    except ImportError:  # no PySpark here, so nothing can be a PySpark command
        return loaded
    return loaded[0] if isinstance(loaded[1], DataType) else loaded
