"""The objects the harness pickles, and the libraries it compares.

A case builds its object lazily (the large ones take memory and seconds)
and says which issue-6 target group it belongs to: "code" (functions and
classes, by value), "fraction" (many instances of an importable class) or
"data" (plain data that plain pickle handles alone); "overhead" is judged
by no target.
"""

import fractions
import importlib
import pickle
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import cloudpickle

import flightpickle
from flightpickle import _native

PROTOCOL = 5
GENERATED_MODULE = "flightpickle_bench_generated"
GENERATED_FUNCTIONS = 50


@dataclass(frozen=True)
class Case:
    name: str
    group: str
    build: Callable[[], object]
    plain_pickle: bool = False
    out_of_band: bool = False
    large: bool = False


def nothing_to_forget():
    pass


def forget_flightpickle_loads():
    _native._forget_loaded_code()
    _native._forget_tracked_loads()


def forget_cloudpickle_loads(tracked=cloudpickle.cloudpickle._DYNAMIC_CLASS_TRACKER_BY_ID.data):
    # The dict beneath the weak dictionary: the weak dictionary's own
    # `clear` pops items until one raises, 2.7 us even when empty.
    tracked.clear()


@dataclass(frozen=True)
class Library:
    name: str
    dumps: Callable
    loads: Callable
    # Puts the process back, as far as this library's loads can tell, to
    # before its first load, for "first loads": flightpickle has no code
    # object to reuse, and neither library finds a class it tracked (from
    # an earlier load, or from the dump), so each makes the class again.
    # Each library forgets only its own, so each pays only for its own.
    forget_loads: Callable = nothing_to_forget

    def dump(self, obj, out_of_band):
        """The pickle and, when asked, its out-of-band buffers."""
        buffers = []
        callback = buffers.append if out_of_band else None
        return self.dumps(obj, protocol=PROTOCOL, buffer_callback=callback), buffers

    def load(self, payload, buffers):
        # As a caller would: `buffers=` only when there are buffers (a
        # keyword also costs each library a parse, and flightpickle's
        # native loader takes only keyword-free calls).
        if buffers:
            return self.loads(payload, buffers=buffers)
        return self.loads(payload)


LIBRARIES = {
    "flightpickle": Library("flightpickle", flightpickle.dumps, flightpickle.loads, forget_flightpickle_loads),
    "cloudpickle": Library("cloudpickle", cloudpickle.dumps, cloudpickle.loads, forget_cloudpickle_loads),
    "pickle": Library("pickle", pickle.dumps, pickle.loads),
}


def subjects():
    """The module of notebook-like definitions, registered by value with both
    libraries, so that they pickle its contents as they would `__main__`'s."""
    from benchmarks import subjects as module

    register_by_value(module)
    return module


def register_by_value(module):
    if module.__name__ not in flightpickle.list_registry_pickle_by_value():
        flightpickle.register_pickle_by_value(module)
    if module.__name__ not in cloudpickle.list_registry_pickle_by_value():
        cloudpickle.register_pickle_by_value(module)


def udf_module():
    from benchmarks import udf as module

    register_by_value(module)
    return module


def generated_module():
    """A module of ~50 functions that call each other, written to a temp dir
    and imported, then registered by value: what a user's helper package
    looks like when shipped with `register_pickle_by_value`."""
    if GENERATED_MODULE not in sys.modules:
        directory = Path(tempfile.mkdtemp(prefix="flightpickle-bench-"))
        (directory / f"{GENERATED_MODULE}.py").write_text(generated_source(GENERATED_FUNCTIONS))
        sys.path.insert(0, str(directory))
    module = importlib.import_module(GENERATED_MODULE)
    register_by_value(module)
    return module


def generated_source(count):
    lines = ["import math", "", "WEIGHT = 1.5", ""]
    for i in range(count):
        callee = f"step_{i - 1}(x) + " if i else ""
        lines += [
            f"def step_{i}(x):",
            f'    """Step {i} of a chain of helpers."""',
            f"    return {callee}math.floor(x * WEIGHT) % {i + 7}",
            "",
        ]
    return "\n".join(lines) + "\n"


def fractions_list(count=100_000):
    return [fractions.Fraction(i, 7) for i in range(1, count + 1)]


def string_dict(count=100_000):
    return {f"key-{i}": f"value number {i}" for i in range(count)}


def numpy_array(megabytes=100):
    import numpy as np

    return np.arange(megabytes * 131072, dtype=np.float64)


CASES = [
    # The fixed cost of one dumps and loads, which every small case pays.
    Case("None (fixed cost)", "overhead", lambda: None, plain_pickle=True),
    Case("small dict", "overhead", lambda: {"name": "ann", "id": 7, "score": 2.5, "tags": ["a", "b"]}, plain_pickle=True),
    Case("small list", "overhead", lambda: [1, 2.5, "three", None, True, b"six", (7, 8)], plain_pickle=True),
    Case("lambda", "code", lambda: subjects().square),
    Case("function+globals", "code", lambda: subjects().score),
    Case("closure", "code", lambda: subjects().closure),
    Case("recursive function", "code", lambda: subjects().fibonacci),
    Case("nested code", "code", lambda: subjects().top_words),
    Case("class", "code", lambda: subjects().Account),
    Case("enum", "code", lambda: subjects().Color),
    Case("dataclass", "code", lambda: subjects().Point),
    Case("module of 50 functions", "code", generated_module),
    Case("pandas UDF + 1 MB array", "code", lambda: udf_module().pandas_udf),
    Case("100k Fractions", "fraction", fractions_list, plain_pickle=True, large=True),
    Case("1M ints", "data", lambda: list(range(1_000_000)), plain_pickle=True, large=True),
    Case("dict of 100k strings", "data", string_dict, plain_pickle=True, large=True),
    Case("numpy 100 MB", "data", numpy_array, plain_pickle=True, large=True),
    Case("numpy 100 MB out-of-band", "data", numpy_array, plain_pickle=True, out_of_band=True, large=True),
]

CASES_BY_NAME = {case.name: case for case in CASES}


def libraries_for(case):
    names = ["flightpickle", "cloudpickle"] + (["pickle"] if case.plain_pickle else [])
    return [LIBRARIES[name] for name in names]
