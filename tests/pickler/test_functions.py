"""Functions pickled by value load in a fresh interpreter that never saw
their source, and behave as the originals (and as cloudpickle's copies)."""

import collections
import concurrent.futures
import math
import os.path
import pickle
import xml.dom.minidom

import cloudpickle
import pytest

import flightpickle

SCALE = 3
UNUSED = list(range(10_000))


def test_lambda(load_fresh, protocol):
    data = flightpickle.dumps(lambda x, y=2: x * y, protocol=protocol)
    assert load_fresh(data, "result = obj(5), obj(5, 3)") == (10, 15)


def test_local_function_with_globals_and_builtins(load_fresh, protocol):
    def scaled(values):
        return sorted(math.floor(v * SCALE) for v in values)

    data = flightpickle.dumps(scaled, protocol=protocol)
    check = """
    g = obj.__globals__
    result = (obj([1.5, 0.2]), sorted(k for k in g if not k.startswith('__')),
              g['__builtins__'] is __builtins__.__dict__ if hasattr(__builtins__, '__dict__') else g['__builtins__'] is __builtins__)
    """
    assert load_fresh(data, check) == ([0, 4], ["SCALE", "math"], True)


def test_only_used_globals_travel(protocol):
    def small():
        return SCALE

    data = flightpickle.dumps(small, protocol=protocol)
    assert len(data) < 1000
    assert b"UNUSED" not in data


def test_globals_of_nested_code_travel(load_fresh, protocol):
    def outer():
        def inner():
            return SCALE * 2

        return inner() + (lambda: SCALE)()

    data = flightpickle.dumps(outer, protocol=protocol)
    assert load_fresh(data, "result = obj()") == 9


def test_global_writes_go_to_the_copied_globals(load_fresh, protocol):
    def bump():
        global SCALE
        SCALE += 1
        return SCALE

    data = flightpickle.dumps(bump, protocol=protocol)
    assert load_fresh(data, "result = (obj(), obj(), obj.__globals__['SCALE'])") == (4, 5, 5)
    assert SCALE == 3


def test_functions_of_one_module_share_globals_after_loading(load_fresh, protocol):
    def read():
        return SCALE

    def write(value):
        global SCALE
        SCALE = value

    data = flightpickle.dumps((read, write), protocol=protocol)
    check = """
    read, write = obj
    write(99)
    result = (read(), read.__globals__ is write.__globals__)
    """
    assert load_fresh(data, check) == (99, True)


def test_closure(load_fresh, protocol):
    def make(n):
        offset = n * 2

        def add(x):
            return x + n + offset

        return add

    data = flightpickle.dumps(make(5), protocol=protocol)
    assert load_fresh(data, "result = (obj(1), obj.__code__.co_freevars)") == (16, ("n", "offset"))


def test_empty_closure_cell_stays_empty(load_fresh, protocol):
    def make():
        if False:
            late = 1

        def use():
            return late  # noqa: F821

        return use

    data = flightpickle.dumps(make(), protocol=protocol)
    check = """
    try:
        obj()
    except NameError as e:
        result = 'empty: ' + type(e).__name__
    """
    assert load_fresh(data, check) == "empty: NameError"


def test_closure_cell_referring_back_to_the_function(load_fresh, protocol):
    def make():
        def countdown(n):
            return 0 if n == 0 else 1 + countdown(n - 1)

        return countdown

    data = flightpickle.dumps(make(), protocol=protocol)
    check = "result = (obj(5), obj.__closure__[0].cell_contents is obj)"
    assert load_fresh(data, check) == (5, True)


def test_mutually_recursive_functions(load_fresh, protocol):
    def make():
        def is_even(n):
            return True if n == 0 else is_odd(n - 1)

        def is_odd(n):
            return False if n == 0 else is_even(n - 1)

        return is_even, is_odd

    data = flightpickle.dumps(make(), protocol=protocol)
    assert load_fresh(data, "result = (obj[0](10), obj[1](7), obj[0](3))") == (True, True, False)


def test_defaults_kwdefaults_annotations_and_attributes(load_fresh, protocol):
    def func(a: int, b: "str" = "x", *, c: float = 1.5, d=None) -> list:
        """Documented."""
        return [a, b, c, d]

    func.tag = {"k": "v"}
    func.__qualname__ = "custom.qualname"
    func.__module__ = "some.module"
    data = flightpickle.dumps(func, protocol=protocol)
    check = """
    result = (obj(1), obj.__defaults__, obj.__kwdefaults__, obj.__annotations__,
              obj.__doc__, obj.__name__, obj.__qualname__, obj.__module__, obj.tag)
    """
    expected = ([1, "x", 1.5, None], ("x",), {"c": 1.5, "d": None},
                {"a": int, "b": "str", "c": float, "return": list},
                "Documented.", "func", "custom.qualname", "some.module", {"k": "v"})
    assert load_fresh(data, check) == expected


def test_submodules_used_as_attributes_are_imported_on_load(load_fresh, protocol):
    def uses_submodules():
        return (concurrent.futures.ThreadPoolExecutor.__name__,
                xml.dom.minidom.parseString("<a/>").documentElement.tagName)

    data = flightpickle.dumps(uses_submodules, protocol=protocol)
    check = """
    import sys
    result = (obj(), 'concurrent.futures' in sys.modules, 'xml.dom.minidom' in sys.modules)
    """
    assert load_fresh(data, check) == (("ThreadPoolExecutor", "a"), True, True)


def test_relative_module_identity_is_kept(load_fresh, protocol):
    def where():
        return __name__

    data = flightpickle.dumps(where, protocol=protocol)
    assert load_fresh(data, "result = obj()") == __name__


def test_importable_function_travels_by_reference(protocol):
    data = flightpickle.dumps(os.path.join, protocol=protocol)
    assert data == pickle.dumps(os.path.join, protocol=protocol)


def test_function_named_after_something_else_travels_by_value(protocol):
    def impostor():
        return "copy"

    impostor.__qualname__ = "join"
    impostor.__module__ = "os.path"
    assert pickle.loads(flightpickle.dumps(impostor, protocol=protocol))() == "copy"


def test_main_rule_and_fresh_interpreters(run_python, load_fresh):
    """A script's functions and lambdas (in __main__) travel by value."""
    script = """
    import sys, flightpickle
    factor = 7
    def times(x):
        return x * factor
    helper = lambda x: times(x) + 1
    def fact(n):
        return 1 if n <= 1 else n * fact(n - 1)
    def is_even(n):
        return True if n == 0 else is_odd(n - 1)
    def is_odd(n):
        return False if n == 0 else is_even(n - 1)
    sys.stdout.buffer.write(flightpickle.dumps([times, helper, fact, is_even], protocol=5))
    """
    data = run_python(script)
    check = """
    import __main__
    times, helper, fact, is_even = obj
    result = (times(2), helper(2), times.__module__, helper.__globals__['factor'],
              fact(6), is_even(9), is_even(10), hasattr(__main__, 'factor'))
    """
    assert load_fresh(data, check) == (14, 15, "__main__", 7, 720, False, True, False)


def _cases():
    def make_counter():
        count = 0

        def inc(step=1):
            nonlocal count
            count += step
            return count

        return inc

    def adder(*args, scale=SCALE):
        return sum(args) * scale

    return {
        "lambda": (lambda s: s.upper(), ("abc",)),
        "counter": (make_counter(), (5,)),
        "adder": (adder, (1, 2, 3)),
        "ordered": (lambda: collections.OrderedDict(a=SCALE), ()),
    }


@pytest.mark.parametrize("name", sorted(_cases()))
def test_same_results_as_cloudpickle(name, protocol):
    func, args = _cases()[name]
    ours = pickle.loads(flightpickle.dumps(func, protocol=protocol))
    theirs = pickle.loads(cloudpickle.dumps(func, protocol=protocol))
    assert ours(*args) == theirs(*args)
    for attr in ("__name__", "__qualname__", "__module__", "__defaults__", "__kwdefaults__", "__doc__"):
        assert getattr(ours, attr) == getattr(theirs, attr)
    assert sorted(ours.__globals__) == sorted(theirs.__globals__)
