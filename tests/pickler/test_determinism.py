"""The same source pickles to the same bytes in every process, whatever the
hash seed: pickles can be cached and compared by digest."""

import os
import subprocess
import sys
import textwrap

import flightpickle

SCRIPT = textwrap.dedent("""
    import hashlib, math, sys, flightpickle
    FACTOR = 3
    COLOURS = {"red", "green", "blue", "cyan", "magenta", "yellow"}
    def helper(x):
        return math.floor(x) * FACTOR
    def udf(x, *, scale=2, kinds=frozenset({"p", "q", "r", "s", "t"})):
        "doc"
        return helper(x) * scale + len(str(x)) + len(COLOURS) + len(kinds) + sum([k in COLOURS for k in kinds])
    def make():
        bias = {"a": 1, "b": 2}
        return lambda v: udf(v) + bias["a"]
    udf.meta = {"name": "udf"}
    sys.stdout.write(hashlib.sha256(flightpickle.dumps((udf, make()), protocol=5)).hexdigest())
""")


def digest(seed):
    env = {**os.environ, "PYTHONHASHSEED": str(seed)}
    proc = subprocess.run([sys.executable, "-c", SCRIPT], env=env,
                          capture_output=True, check=True, timeout=60)
    return proc.stdout


def test_function_pickles_do_not_depend_on_the_process():
    assert len({digest(seed) for seed in (0, 1, 12345)}) == 1


def _equal_copy(text):
    """An equal str that is not the interned one."""
    copy = "".join([text[:1], text[1:]])
    assert copy == text and copy is not text
    return copy


def test_function_pickles_do_not_depend_on_which_strings_are_interned():
    # The names are written before the function, outside it: the function's
    # own names must not be read back from there only when they are the
    # very same (interned) objects.
    def scaled_sum(values, factor=2):
        return sum(values) * factor

    names = [scaled_sum.__name__, scaled_sum.__qualname__, scaled_sum.__module__]
    interned = flightpickle.dumps([*names, scaled_sum], protocol=5)
    copies = flightpickle.dumps([*map(_equal_copy, names), scaled_sum], protocol=5)
    assert interned == copies


def test_function_names_that_are_not_interned_pickle_as_interned_ones():
    def make(name):
        def inner(x):
            return x + 1
        inner.__name__ = name
        inner.__qualname__ = name
        return inner

    interned = make(sys.intern("renamed_function"))
    copied = make(_equal_copy("renamed_function"))
    assert flightpickle.dumps(["renamed_function", interned]) == flightpickle.dumps(["renamed_function", copied])


def test_sets_of_strings_in_function_state_travel_sorted_in_set_opcodes():
    import pickle
    import pickletools

    colours = {"red", "green", "blue"}

    def make(tags):
        return lambda: (tags, colours)

    first, second = make(colours), make(colours)
    data = flightpickle.dumps((first, second), protocol=5)
    ops = [(op.name, arg) for op, arg, _ in pickletools.genops(data)]
    assert ("STACK_GLOBAL", None) in ops and ("SHORT_BINUNICODE", "set") not in ops
    added = [arg for name, arg in ops if name == "SHORT_BINUNICODE" and arg in colours]
    assert added == sorted(colours)
    loaded_first, loaded_second = pickle.loads(data)
    tags, also_colours = loaded_first()
    assert tags == colours and tags is also_colours is loaded_second()[0]
    # Before protocol 4 there are no set opcodes: `set(sorted items)`.
    assert b"set" in flightpickle.dumps(first, protocol=2)
    assert pickle.loads(flightpickle.dumps(first, protocol=2))()[0] == colours
