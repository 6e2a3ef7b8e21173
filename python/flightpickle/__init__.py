"""Pickle functions and classes by value, with a Rust core.

A drop-in replacement for cloudpickle 3.1: ``import flightpickle as
cloudpickle`` keeps programs working. Lambdas, closures, and functions and
classes defined in ``__main__`` (scripts, notebooks) are pickled by value and
load in any process that has flightpickle installed, with plain
``pickle.loads``. Everything plain ``pickle`` handles is pickled as it would.
"""

import copyreg
import io
import pickle

from . import _diagnose, _errors, _native
from ._native import (
    list_registry_pickle_by_value,
    register_pickle_by_value,
    unregister_pickle_by_value,
)

__version__ = _native.__version__

__all__ = [
    "__version__",
    "DEFAULT_PROTOCOL",
    "CloudPickler",
    "Pickler",
    "dump",
    "dumps",
    "list_registry_pickle_by_value",
    "load",
    "loads",
    "register_pickle_by_value",
    "unregister_pickle_by_value",
]

DEFAULT_PROTOCOL = pickle.HIGHEST_PROTOCOL


class Pickler(pickle.Pickler):
    """The C pickler, with functions and classes reduced in Rust.

    Subclasses may define their own ``reducer_override`` (and call
    ``super().reducer_override(obj)``) or extend ``dispatch_table``.
    """

    # Reducers by exact type; consulted before copyreg's, which stays live.
    _dispatch_table = _native.REDUCERS
    dispatch_table = _native.DispatchTable(_dispatch_table, copyreg.dispatch_table)
    # cloudpickle's name for the same table, kept for code written against it.
    dispatch = dispatch_table
    reducer_override = _native.ReducerOverride()

    def __init__(self, file, protocol=None, buffer_callback=None):
        if protocol is None:
            protocol = DEFAULT_PROTOCOL
        super().__init__(file, protocol=protocol, buffer_callback=buffer_callback)
        self.proto = int(protocol)
        self._flightpickle_state = _native.PicklerState(self.proto)

    def dump(self, obj):
        try:
            return super().dump(obj)
        except RecursionError as e:
            msg = "Could not pickle object as excessively deep recursion required."
            raise pickle.PicklingError(msg) from e
        except Exception as e:
            path = _diagnose.locate(obj, type(self), self.proto)
            if path is None:
                # Not a failure to pickle `obj` (a full disk, a failing
                # file object): pickle's exception is the right one.
                raise
            raise _errors.pickling_error(e, path) from e


CloudPickler = Pickler


def dump(obj, file, protocol=None, buffer_callback=None):
    """Pickle ``obj`` into ``file``, functions and classes by value where needed."""
    Pickler(file, protocol=protocol, buffer_callback=buffer_callback).dump(obj)


def dumps(obj, protocol=None, buffer_callback=None):
    """Pickle ``obj`` to bytes, functions and classes by value where needed."""
    with io.BytesIO() as file:
        Pickler(file, protocol=protocol, buffer_callback=buffer_callback).dump(obj)
        return file.getvalue()


def load(file, *, fix_imports=True, encoding="ASCII", errors="strict", buffers=()):
    """``pickle.load``, with a hint when a module the pickle names is missing."""
    try:
        return _pickle_load(file, fix_imports=fix_imports, encoding=encoding, errors=errors, buffers=buffers)
    except ModuleNotFoundError as e:
        raise _errors.missing_module_error(e) from e


def loads(data, /, *, fix_imports=True, encoding="ASCII", errors="strict", buffers=()):
    """``pickle.loads``, with a hint when a module the pickle names is missing."""
    try:
        return _pickle_loads(data, fix_imports=fix_imports, encoding=encoding, errors=errors, buffers=buffers)
    except ModuleNotFoundError as e:
        raise _errors.missing_module_error(e) from e


# Bound once: the wrappers above call pickle's C functions directly.
_pickle_load = pickle.load
_pickle_loads = pickle.loads
