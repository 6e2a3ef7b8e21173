"""Turning flightpickle on in the driver's Python without any code in the application.

PySpark runs no user hook when a SparkContext starts, so the package installs
one: ``flightpickle_autoenable.pth`` imports the tiny ``_flightpickle_autoenable``
at interpreter start, which waits for ``pyspark.core.context`` to be imported
and then calls ``install`` here. ``install`` wraps ``SparkContext.__init__``:
once a context has started, and the plugin's switch
(``spark.flightpickle.python.enabled``, which the driver plugin sets) is on,
``flightpickle.spark.enable(context)`` runs with the context's confs.
"""

from __future__ import annotations

import functools

from flightpickle.spark import _plugin

_HOOK_MARK = "_flightpickle_enables_on_start"


def install(context_module) -> None:
    """Wrap ``context_module.SparkContext.__init__``, once."""
    spark_context = context_module.SparkContext
    original = spark_context.__init__
    if getattr(original, _HOOK_MARK, False):
        return

    @functools.wraps(original)
    def __init__(self, *args, **kwargs):
        original(self, *args, **kwargs)
        enable_if_switched_on(self)

    setattr(__init__, _HOOK_MARK, True)
    spark_context.__init__ = __init__


def enable_if_switched_on(context) -> bool:
    """Enable flightpickle for a started context when its conf asks for it.

    A failure stops the context before raising: a driver that was asked to
    sign or ship modules and cannot must not run UDFs as if it did.
    """
    if not _plugin.switched_on(context):
        return False
    from flightpickle.spark import _driver

    try:
        _driver.enable(context)
    except BaseException:
        context.stop()
        raise
    return True
