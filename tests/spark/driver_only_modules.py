"""Modules the driver can import and the executors cannot, like files next to a notebook."""

from __future__ import annotations

import contextlib
import importlib
import sys
from collections.abc import Iterator
from pathlib import Path

import flightpickle

SCALING_MODULE = '''
FACTOR = {factor}

def scale(n):
    return n * FACTOR
'''


@contextlib.contextmanager
def scaling_modules(folder: Path, factors: dict[str, int]) -> Iterator[list]:
    """Write a module per name whose ``scale(n)`` is ``n * factor``, import them for the block.

    ``folder`` goes on the driver's ``sys.path`` only; afterwards it leaves it,
    and the modules leave ``sys.modules`` and flightpickle's by-value registry.
    """
    for name, factor in factors.items():
        (folder / f"{name}.py").write_text(SCALING_MODULE.format(factor=factor))
    sys.path.insert(0, str(folder))
    try:
        modules = [importlib.import_module(name) for name in factors]
        yield modules
    finally:
        sys.path.remove(str(folder))
        for name in factors:
            module = sys.modules.pop(name, None)
            if module is not None and name in flightpickle.list_registry_pickle_by_value():
                flightpickle.unregister_pickle_by_value(module)
