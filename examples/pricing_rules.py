"""A module of the user's own project, next to the notebook.

Spark's executors cannot import it: it is neither installed nor shipped with
``--py-files``. ``flightpickle.spark.pickle_by_value`` makes UDFs that use it
carry its functions by value instead.
"""

BULK_THRESHOLD = 25


def bulk_discount(amount: float) -> float:
    """A tenth off amounts at or above the bulk threshold."""
    return round(amount * 0.9, 2) if amount >= BULK_THRESHOLD else float(amount)
