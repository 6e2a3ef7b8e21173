"""The errors flightpickle raises in place of the ones pickle raised.

Pickling failures become ``pickle.PicklingError`` whose message says where
the unpicklable part is. Code written against pickle or cloudpickle catches
the original type (``TypeError: cannot pickle '_thread.lock' object``), so the
error raised is an instance of both: a subclass of ``PicklingError`` and of
the original class, made once per original class.

Loading failures for a module that is missing get a hint, and keep their type.
"""

import pickle
import threading

# Original exception class -> its combination with PicklingError. The
# combinations hold their original class alive anyway (as a base), so a
# plain dict costs nothing a weak one would save.
_combined = {}
_combined_lock = threading.Lock()


def pickling_error(original, path):
    """A PicklingError naming ``path`` and carrying ``original``'s message."""
    message = f"Could not pickle {path}: {original}"
    cls = type(original)
    if issubclass(cls, pickle.PicklingError):
        return _instance(cls, message) or pickle.PicklingError(message)
    combined = _combination(cls)
    return (combined and _instance(combined, message)) or pickle.PicklingError(message)


def _instance(cls, message):
    # Classes whose constructor wants other arguments (UnicodeEncodeError
    # takes five) cannot carry our message: the caller falls back.
    try:
        error = cls(message)
    except Exception:
        return None
    return error if _shows(error, message) else None


def _shows(error, message):
    try:
        return str(error) == message
    except Exception:
        return False


def _combination(cls):
    with _combined_lock:
        if cls not in _combined:
            _combined[cls] = _make_combination(cls)
        return _combined[cls]


def _make_combination(cls):
    namespace = {
        "__module__": "flightpickle",
        "__qualname__": f"PicklingError({cls.__qualname__})",
        "__doc__": f"A PicklingError that is also a {cls.__qualname__}.",
        # KeyError and a few others quote their message; the path must read plainly.
        "__str__": pickle.PicklingError.__str__,
        "__reduce__": _reduce_combined,
        "_flightpickle_original": cls,
    }
    try:
        return type("PicklingError", (pickle.PicklingError, cls), namespace)
    except TypeError:
        # Final classes, and layouts that cannot be merged with Exception's.
        return None


def _reduce_combined(error):
    # The combination has no importable name; it is rebuilt from its parts
    # where it is loaded (a worker sending the error back to its parent).
    return rebuild_pickling_error, (type(error)._flightpickle_original, str(error))


def rebuild_pickling_error(original, message):
    """Load-time name for errors made by ``pickling_error``."""
    combined = _combination(original)
    return (combined and _instance(combined, message)) or pickle.PicklingError(message)


def missing_module_error(error):
    """``error`` (a ModuleNotFoundError raised while loading), with a hint."""
    name = error.name or "the missing module"
    message = (
        f"{error.msg}. The pickle refers to {name!r} by reference, and it cannot be imported "
        f"here. Install it where the pickle is loaded, or have the pickling side call "
        f"flightpickle.register_pickle_by_value({name.split('.')[0]}) before dumping, so that "
        f"its functions and classes travel by value."
    )
    return ModuleNotFoundError(message, name=error.name, path=error.path)
