"""Where in an object graph pickling failed: runs only after a failure.

The C pickler reports what could not be pickled (``cannot pickle
'_thread.lock' object``) but not where it was. This walks down from the
object being pickled, always into the first part that fails to pickle on
its own, and names the path to the deepest one, e.g.
``udf.__globals__['model'].session._lock``.
"""

import io
import threading
import time
import types

_CONTAINERS = (list, tuple, set, frozenset)
# Kinds that always pickle: never worth a trial dump.
_ATOMIC = (int, float, complex, str, bytes, bool, type(None))
# A diagnosis makes a trial dump per part it looks at; on huge graphs it
# stops here and names the deepest part found so far.
_BUDGET_SECONDS = 3.0

# Set while a diagnosis runs: the trial dumps it makes fail too, and must
# not each start a diagnosis of their own.
_active = threading.local()


def locate(obj, pickler_class, protocol):
    """The path to the deepest part of ``obj`` that fails to pickle on its own,
    such as ``udf.__globals__['model']._lock``; None when ``obj`` itself
    pickles (the failure was not about it) or no diagnosis can be made."""
    if getattr(_active, "running", False):
        return None
    _active.running = True
    try:
        return _locate(obj, pickler_class, protocol)
    except Exception:
        return None
    finally:
        _active.running = False


def _locate(obj, pickler_class, protocol):
    try:
        pickler_class(io.BytesIO(), protocol=protocol)
    except Exception:
        # A subclass with another constructor: trial dumps cannot be made.
        return None
    if _pickles(obj, pickler_class, protocol):
        return None
    deadline = time.monotonic() + _BUDGET_SECONDS
    path = [_root_label(obj)]
    seen = {id(obj)}
    node = obj
    while time.monotonic() < deadline:
        for label, child in _parts(node, pickler_class, protocol):
            if id(child) not in seen and not _pickles(child, pickler_class, protocol):
                seen.add(id(child))
                path.append(label)
                node = child
                break
        else:
            break
    return "".join(path)


def _root_label(obj):
    if isinstance(obj, (types.FunctionType, type, types.ModuleType)):
        return obj.__name__
    return "obj"


def _pickles(obj, pickler_class, protocol):
    if type(obj) in _ATOMIC:
        return True
    try:
        pickler_class(io.BytesIO(), protocol=protocol).dump(obj)
    except Exception:
        return False
    return True


def _parts(node, pickler_class, protocol):
    """(label, part) pairs, the way the pickler will take ``node`` apart."""
    if isinstance(node, dict):
        return [(f"[{key!r}]", value) for key, value in node.items()]
    if isinstance(node, _CONTAINERS):
        return [(f"[{index}]", item) for index, item in enumerate(node)]
    if isinstance(node, types.CellType):
        try:
            return [(".cell_contents", node.cell_contents)]
        except ValueError:
            return []
    try:
        reduced = _reduce(node, pickler_class, protocol)
    except Exception:
        # Refused outright: this is the part that cannot be pickled.
        return []
    if not isinstance(reduced, tuple):
        return []
    args = reduced[1] if len(reduced) > 1 else ()
    state = reduced[2] if len(reduced) > 2 else None
    parts = [(f"<argument {index}>", arg) for index, arg in enumerate(args or ())]
    if isinstance(state, tuple) and len(state) == 2:
        parts = _state_parts(state[1]) + _state_parts(state[0]) + parts
    else:
        parts = _state_parts(state) + parts
    return parts


def _state_parts(state):
    if isinstance(state, dict):
        return [(f".{key}" if isinstance(key, str) else f"[{key!r}]", value)
                for key, value in state.items()]
    return []


def _reduce(node, pickler_class, protocol):
    pickler = pickler_class(io.BytesIO(), protocol=protocol)
    reduced = pickler.reducer_override(node)
    if reduced is NotImplemented:
        reducer = pickler_class.dispatch_table.get(type(node))
        reduced = reducer(node) if reducer else node.__reduce_ex__(protocol)
    return reduced
