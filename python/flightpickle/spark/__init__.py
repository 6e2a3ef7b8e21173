"""flightpickle for PySpark.

``enable()`` makes the driver pickle every UDF and RDD command with flightpickle
instead of PySpark's vendored cloudpickle; ``disable()`` puts PySpark back
exactly as it was. Executors load the commands with plain ``pickle.loads``, so
they need flightpickle installed (it is, in the venv that ``make`` builds).

Only the driver-side command pickling is replaced, never PySpark's serializer
class: on executors that class also pickles UDF results for the JVM, whose
pickle reader cannot call flightpickle's reconstructors.
"""

from flightpickle.spark._driver import CommandStats, disable, enable, is_enabled, stats

__all__ = ["CommandStats", "disable", "enable", "is_enabled", "stats"]
