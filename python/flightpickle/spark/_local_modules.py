"""Finding the user's own modules that a command uses, to ship them by value.

A module is the user's own when it was loaded from a file outside the standard
library and site-packages: a project file next to the notebook or script,
which executors cannot import unless it is shipped with ``--py-files``.
``by_value_while_pickling(command)`` registers those modules for by-value
pickling for the length of one dump, then restores the registry.
"""

from __future__ import annotations

import contextlib
import functools
import os
import site
import sys
import sysconfig
import types

import flightpickle
from flightpickle import _native

# Never shipped by value even when installed in editable mode outside site-packages:
# executors have them, and they are what loads the rest.
_ALWAYS_IMPORTABLE = frozenset({"flightpickle", "pyspark", "py4j"})


@contextlib.contextmanager
def by_value_while_pickling(command):
    """Ship every user module ``command`` uses by value for the length of the block."""
    registered = set(flightpickle.list_registry_pickle_by_value())
    added = [m for m in used_local_modules(command) if m.__name__ not in registered]
    for module in added:
        flightpickle.register_pickle_by_value(module)
    try:
        yield [m.__name__ for m in added]
    finally:
        for module in added:
            flightpickle.unregister_pickle_by_value(module)


def used_local_modules(root) -> list[types.ModuleType]:
    """The user's own modules that ``root`` reaches through code, closures and classes."""
    found: dict[str, types.ModuleType] = {}
    seen: set[int] = set()
    pending = [root]
    while pending:
        item = pending.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        module = _home_module(item)
        if module is not None and is_local(module):
            found[module.__name__] = module
        if not isinstance(item, types.ModuleType):
            pending.extend(_parts(item))
    return sorted(found.values(), key=lambda m: m.__name__)


def is_local(module: types.ModuleType) -> bool:
    """Loaded from a file outside the standard library and site-packages."""
    if module.__name__.partition(".")[0] in _ALWAYS_IMPORTABLE or module.__name__ == "__main__":
        return False
    path = getattr(module, "__file__", None)
    if not path:
        return False
    path = os.path.realpath(path)
    return not any(path.startswith(root + os.sep) for root in _library_roots())


@functools.lru_cache(maxsize=1)
def _library_roots() -> tuple[str, ...]:
    paths = sysconfig.get_paths()
    roots = {paths[key] for key in ("stdlib", "platstdlib", "purelib", "platlib") if key in paths}
    roots.update(site.getsitepackages())
    roots.add(site.getusersitepackages())
    return tuple(sorted(os.path.realpath(root) for root in roots))


def _home_module(item) -> types.ModuleType | None:
    if isinstance(item, types.ModuleType):
        return item
    if isinstance(item, (types.FunctionType, type)):
        return sys.modules.get(getattr(item, "__module__", None) or "")
    return None


def _parts(item) -> list:
    """What pickling ``item`` by value would pickle in turn, as far as modules matter."""
    if isinstance(item, types.FunctionType):
        cells = []
        for cell in item.__closure__ or ():
            with contextlib.suppress(ValueError):  # an empty cell holds nothing
                cells.append(cell.cell_contents)
        defaults = [*(item.__defaults__ or ()), *(item.__kwdefaults__ or {}).values()]
        return [*_native.captured_globals(item).values(), *cells, *defaults]
    if isinstance(item, type):
        return [*vars(item).values(), *item.__bases__]
    if isinstance(item, (staticmethod, classmethod)):
        return [item.__func__]
    if isinstance(item, property):
        return [item.fget, item.fset, item.fdel]
    if isinstance(item, functools.partial):
        return [item.func, *item.args, *item.keywords.values()]
    if isinstance(item, (tuple, list)):
        return list(item)
    if isinstance(item, dict):
        return list(item.values())
    return []
