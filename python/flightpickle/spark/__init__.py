"""flightpickle for PySpark.

``enable()`` makes the driver pickle every UDF and RDD command with flightpickle
instead of PySpark's vendored cloudpickle, and so does a Spark Connect client
(``enable(connect_session)``); ``disable()`` puts PySpark back exactly as it
was. Commands are sealed payloads by default, which executors open with
flightpickle (installed there, and preloaded by the daemon module
``flightpickle.spark.daemon``); ``enable(target="pyspark")`` writes plain
pickles that stock PySpark executors load. ``pickle_by_value(module)`` and the
``pickleLocalModules`` policy ship the user's own modules with the commands.

Only the driver-side command pickling is replaced, never PySpark's serializer
class: on executors that class also pickles UDF results for the JVM, whose
pickle reader cannot call flightpickle's reconstructors.
"""

from flightpickle.spark._driver import CommandStats, disable, enable, is_enabled, pickle_by_value, stats

__all__ = ["CommandStats", "disable", "enable", "is_enabled", "pickle_by_value", "stats"]
