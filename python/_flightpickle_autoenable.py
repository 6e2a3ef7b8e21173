"""Run at every interpreter start by flightpickle_autoenable.pth: keep it cheap and harmless.

It only places a finder at the front of ``sys.meta_path`` that waits for
``pyspark.core.context``; nothing is imported until PySpark itself is, so a
process that never uses PySpark pays one string comparison per new import.
When PySpark's context module has loaded, the finder removes itself and wraps
``SparkContext.__init__``. Only a context started with the plugin's switch on
(``spark.flightpickle.python.enabled=true``) imports flightpickle, whose
``flightpickle.spark._autoenable`` then enables it; other PySpark programs
never load it. A failure of the hook itself is a warning, never an error in
the user's process. ``FLIGHTPICKLE_AUTOENABLE=0`` turns all of this off.
"""

import os
import sys

_WATCHED = "pyspark.core.context"
_SWITCH = "spark.flightpickle.python.enabled"
_MARK = "_flightpickle_enables_on_start"


class _PySparkContextFinder:
    """Finds nothing itself; wraps the loader of ``pyspark.core.context``."""

    @classmethod
    def find_spec(cls, fullname, path=None, target=None):
        if fullname != _WATCHED:
            return None
        for finder in sys.meta_path:
            if finder is cls or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                    spec.loader = _HookingLoader(spec.loader)
                return spec
        return None


class _HookingLoader:
    """Delegates to PySpark's own loader, then installs the hook on the loaded module."""

    def __init__(self, loader):
        self._loader = loader

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        self._loader.exec_module(module)
        _uninstall()
        _hook(module)

    def __getattr__(self, name):
        return getattr(self._loader, name)


def _hook(module):
    try:
        _wrap_init(module.SparkContext)
    except Exception as error:  # never break a PySpark program for this
        _warn(f"flightpickle could not hook into PySpark ({type(error).__name__}: {error})")


def _wrap_init(spark_context):
    """Make every started SparkContext enable flightpickle when its conf says so."""
    import functools

    original = spark_context.__init__
    if getattr(original, _MARK, False):
        return

    @functools.wraps(original)
    def __init__(self, *args, **kwargs):
        original(self, *args, **kwargs)
        if _switched_on(self):
            # Errors here are the user's to see: the plugin asked for flightpickle.
            from flightpickle.spark._autoenable import enable_if_switched_on

            enable_if_switched_on(self)

    setattr(__init__, _MARK, True)
    spark_context.__init__ = __init__


def _switched_on(context):
    try:
        value = context.getConf().get(_SWITCH, None) or "false"
    except Exception as error:  # a context we cannot read is left as PySpark made it
        _warn(f"flightpickle could not read {_SWITCH} ({type(error).__name__}: {error})")
        return False
    return value.strip().lower() == "true"


def _warn(problem):
    import warnings

    warnings.warn(
        f"{problem}; UDFs are pickled by PySpark unless flightpickle.spark.enable() is called",
        RuntimeWarning,
        stacklevel=3,
    )


def _uninstall():
    if _PySparkContextFinder in sys.meta_path:
        sys.meta_path.remove(_PySparkContextFinder)


def _install():
    if os.environ.get("FLIGHTPICKLE_AUTOENABLE", "1").strip() in ("0", "false", "no"):
        return
    if _WATCHED in sys.modules:
        _hook(sys.modules[_WATCHED])
    elif _PySparkContextFinder not in sys.meta_path:
        sys.meta_path.insert(0, _PySparkContextFinder)


try:
    _install()
except Exception:  # noqa: BLE001 - interpreter start must never fail because of this file
    pass
