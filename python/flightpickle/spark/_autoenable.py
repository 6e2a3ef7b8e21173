"""Turning flightpickle on in the driver's Python without any code in the application.

PySpark runs no user hook when a SparkContext starts, so the package installs
one: ``flightpickle_autoenable.pth`` imports the tiny ``_flightpickle_autoenable``
at interpreter start, which waits for ``pyspark.core.context`` and wraps
``SparkContext.__init__``. A context that starts with the plugin's switch
(``spark.flightpickle.python.enabled``, which the driver plugin sets) comes
here, and ``flightpickle.spark.enable(context)`` runs with the context's confs.
"""

from __future__ import annotations

import warnings

from flightpickle.spark import _plugin


def enable_if_switched_on(context) -> bool:
    """Enable flightpickle for a started context when its conf asks for it.

    A module in ``spark.flightpickle.pickleByValue`` that cannot be imported
    yet is skipped with a warning: a notebook may put it on ``sys.path`` after
    the context starts, and ``flightpickle.spark.enable(spark)`` then picks it
    up. Any other failure stops the context before raising: a driver that was
    asked to sign its commands and cannot must not run UDFs as if it did.
    """
    if not _plugin.switched_on(context):
        return False
    from flightpickle.spark import _driver

    try:
        _driver._enable(context, None, None, None, _warn_missing_module)
    except BaseException:
        context.stop()
        raise
    return True


def _warn_missing_module(name: str, error: ImportError) -> None:
    warnings.warn(
        f"spark.flightpickle.pickleByValue names {name!r}, which the driver cannot import yet ({error}); "
        "it is not shipped by value until flightpickle.spark.enable(spark) runs once it can be imported",
        RuntimeWarning,
        stacklevel=2,
    )
