"""Pickle functions and classes by value, with a Rust core.

A drop-in replacement for cloudpickle 3.1: ``import flightpickle as
cloudpickle`` keeps programs working. Lambdas, closures, and functions and
classes defined in ``__main__`` (scripts, notebooks) are pickled by value and
load in any process that has flightpickle installed, with plain
``pickle.loads``. Everything plain ``pickle`` handles is pickled as it would.

A wire target says what the loading side needs: ``"native"`` (the default)
names flightpickle's own reconstructors; ``"cloudpickle"`` and ``"pyspark"``
name those of stock cloudpickle 3.1 and of PySpark's copy of it, so that a
process with only one of those loads the pickle. Choose it per call
(``dumps(obj, target="pyspark")``), per pickler, or for the whole process
with ``set_default_target`` or the ``FLIGHTPICKLE_TARGET`` environment
variable (read once).
"""

import copyreg
import io
import pickle

from . import _diagnose, _errors, _native
from ._native import (
    get_default_target,
    list_registry_pickle_by_value,
    set_default_target,
    register_pickle_by_value,
    unregister_pickle_by_value,
)

# The reconstructors that pickles name, bound here as ``flightpickle._<name>``:
# a WIRE FORMAT (see _reconstruct.py, which keeps the names of older pickles).
globals().update((name, value) for name, value in vars(_native._reconstruct).items() if not name.startswith("__"))

__version__ = _native.__version__

__all__ = [
    "__version__",
    "DEFAULT_PROTOCOL",
    "CloudPickler",
    "Pickler",
    "dump",
    "dumps",
    "get_default_target",
    "list_registry_pickle_by_value",
    "load",
    "loads",
    "register_pickle_by_value",
    "set_default_target",
    "unregister_pickle_by_value",
]

DEFAULT_PROTOCOL = pickle.HIGHEST_PROTOCOL


class Pickler(pickle.Pickler):
    """The C pickler, with functions and classes reduced in Rust.

    ``target`` (keyword-only) is the wire target; None means the process
    default (see ``set_default_target``).

    Subclasses may define their own ``reducer_override`` (and call
    ``super().reducer_override(obj)``) or extend ``dispatch_table``.
    """

    # Reducers by exact type; consulted before copyreg's, which stays live.
    _dispatch_table = _native.REDUCERS
    dispatch_table = _native.DispatchTable(_dispatch_table, copyreg.dispatch_table)
    # cloudpickle's name for the same table, kept for code written against it.
    dispatch = dispatch_table
    reducer_override = _native.ReducerOverride()

    def __init__(self, file, protocol=None, buffer_callback=None, *, target=None):
        if protocol is None:
            protocol = DEFAULT_PROTOCOL
        super().__init__(file, protocol=protocol, buffer_callback=buffer_callback)
        # As the C pickler reads it (which has just checked it): a negative
        # protocol is the highest, which the native writer then writes too.
        self.proto = int(protocol)
        if self.proto < 0:
            self.proto = pickle.HIGHEST_PROTOCOL
        self._flightpickle_state = _native.PicklerState(self.proto, target, file, buffer_callback)

    @property
    def target(self):
        """The wire target this pickler writes for."""
        return self._flightpickle_state.target

    def dump(self, obj):
        # The native writer (as module-level dumps) where it writes what the
        # C pickler would for this pickler; the C pickler otherwise.
        self._dump(obj, natively=True)

    def _dump(self, obj, natively):
        # The C pickler calls table reducers with the object alone: they
        # learn this pickler's target from the thread for the dump's length.
        previous = _native.enter_dump(self)
        try:
            if not (natively and _native.dump_natively(self, obj)):
                super().dump(obj)
        except Exception as e:
            _raise_pickling_failure(e, obj, type(self), self.proto)
        finally:
            _native.leave_dump(previous)

    # A native dump keeps its memo to itself until the C pickler needs it
    # (pickler_dump.rs): reading the memo hands it over first.
    @property
    def memo(self):
        _native.hand_memo_over(self)
        return _C_PICKLER_MEMO.__get__(self)

    @memo.setter
    def memo(self, memo):
        _C_PICKLER_MEMO.__set__(self, memo)
        _native.memo_reset(self, empty=False)

    def clear_memo(self):
        super().clear_memo()
        _native.memo_reset(self, empty=True)


# The C pickler's own memo accessors, which Pickler.memo wraps.
_C_PICKLER_MEMO = pickle.Pickler.__dict__["memo"]


def _raise_pickling_failure(error, obj, pickler_class, protocol):
    """Re-raises ``error``, a failure to pickle ``obj``, as a PicklingError
    naming where in ``obj`` it happened; other failures (a full disk, a
    failing file object) as they are."""
    if isinstance(error, RecursionError):
        msg = "Could not pickle object as excessively deep recursion required."
        raise pickle.PicklingError(msg) from error
    path = _diagnose.locate(obj, pickler_class, protocol)
    if path is None:
        raise error
    raise _errors.pickling_error(error, path) from error


CloudPickler = Pickler


# ``dumps`` and ``dump`` are native (_native's dumping.rs): the native
# writer, which writes what Pickler would (see writer/mod.rs), with no
# Python frame per call. They leave to the helpers below the dumps the
# writer declines and the explanation of a failure.
dumps = _native.dumps
dump = _native.dump


# The native writer has declined these, so the C pickler dumps them.
def _dumps_by_pickler(obj, protocol, buffer_callback, target):
    with io.BytesIO() as file:
        Pickler(file, protocol=protocol, buffer_callback=buffer_callback, target=target)._dump(obj, natively=False)
        return file.getvalue()


def _dump_by_pickler(obj, file, protocol, buffer_callback, target):
    Pickler(file, protocol=protocol, buffer_callback=buffer_callback, target=target)._dump(obj, natively=False)


def _pickling_failed(error, obj, protocol):
    protocol = DEFAULT_PROTOCOL if protocol is None else int(protocol)
    _raise_pickling_failure(error, obj, Pickler, protocol)


_native.use_pickler_class(Pickler)
_native.use_package_namespace(globals())


# ``load`` and ``loads`` are pickle's, with a hint when a module the pickle
# names is missing (_native's loading.rs: they pass their arguments on
# untouched, so a call costs what pickle's does).
load = _native.load
loads = _native.loads


# Sealed payloads and inspection build on dumps above, so they come last.
from .explain import explain  # noqa: E402
from .inspection import inspect_payload  # noqa: E402
from .sealing import SealedPayloadError, seal, unseal  # noqa: E402

__all__ += ["SealedPayloadError", "explain", "inspect_payload", "seal", "unseal"]
