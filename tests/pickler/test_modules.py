"""Modules: importable ones by reference, dynamic and registered ones by
value (registration covers submodules)."""

import os
import pickle
import pickletools
import sys
import textwrap
import types

import pytest

import flightpickle


def test_importable_module_by_reference(load_fresh, protocol):
    data = flightpickle.dumps(os, protocol=protocol)
    assert b"subimport" in data
    assert load_fresh(data, "import os; result = obj is os") is True


def test_dynamic_module_by_value(load_fresh, protocol):
    module = types.ModuleType("made_at_run_time")
    exec("BASE = 40\ndef answer(x):\n    return BASE + x\n", module.__dict__)
    data = flightpickle.dumps(module, protocol=protocol)
    check = """
    import sys
    result = (obj.answer(2), obj.__name__, 'made_at_run_time' in sys.modules,
              obj.__dict__['__builtins__'] is __builtins__.__dict__)
    """
    assert load_fresh(data, check) == (42, "made_at_run_time", False, True)


def test_a_module_by_value_writes_each_function_name_once(protocol):
    # The namespace's key and the code's name are one string: the second
    # is read back from the memo, not written and loaded again.
    module = types.ModuleType("named_once")
    exec("def first_helper(x):\n    return x\n\ndef second_helper(x):\n    return x\n", module.__dict__)
    data = flightpickle.dumps(module, protocol=protocol)
    texts = [arg for op, arg, _ in pickletools.genops(data) if "UNICODE" in op.name]
    assert texts.count("first_helper") == 1
    assert texts.count("second_helper") == 1
    loaded = pickle.loads(data)
    assert loaded.first_helper.__name__ == "first_helper"
    assert loaded.second_helper.__code__.co_name == "second_helper"


def test_function_using_a_dynamic_module(load_fresh, protocol):
    module = types.ModuleType("helpers_at_run_time")
    module.FACTOR = 5
    data = flightpickle.dumps(lambda x: module.FACTOR * x, protocol=protocol)
    assert load_fresh(data, "result = obj(3)") == 15


@pytest.fixture
def local_package(tmp_path, monkeypatch):
    """A package importable here only (the fresh interpreter cannot)."""
    root = tmp_path / "localpkg_for_tests"
    (root / "sub").mkdir(parents=True)
    (root / "__init__.py").write_text("")
    (root / "core.py").write_text(textwrap.dedent("""
        OFFSET = 100

        def shift(x):
            return x + OFFSET

        class Counter:
            def __init__(self):
                self.n = 0

            def bump(self):
                self.n = shift(self.n)
                return self.n
    """))
    (root / "sub" / "__init__.py").write_text("")
    (root / "sub" / "deep.py").write_text("def twice(x):\n    return 2 * x\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import localpkg_for_tests.core
    import localpkg_for_tests.sub.deep
    yield localpkg_for_tests
    for name in [n for n in sys.modules if n.startswith("localpkg_for_tests")]:
        del sys.modules[name]


def test_registered_package_and_submodules_by_value(local_package, load_fresh, protocol):
    core, deep = local_package.core, local_package.sub.deep
    by_reference = flightpickle.dumps(core.shift, protocol=protocol)
    assert by_reference == pickle.dumps(core.shift, protocol=protocol)
    flightpickle.register_pickle_by_value(local_package)
    try:
        data = flightpickle.dumps((core.shift, core.Counter, deep.twice, deep), protocol=protocol)
    finally:
        flightpickle.unregister_pickle_by_value(local_package)
    check = """
    import sys
    shift, Counter, twice, deep = obj
    c = Counter()
    result = (shift(1), c.bump(), twice(4), deep.twice(5),
              any(n.startswith('localpkg_for_tests') for n in sys.modules))
    """
    assert load_fresh(data, check) == (101, 100, 8, 10, False)


def test_unregistered_local_package_fails_to_load_fresh(local_package, load_fresh):
    data = flightpickle.dumps(local_package.core.shift)
    with pytest.raises(AssertionError, match="No module named 'localpkg_for_tests'"):
        load_fresh(data)


MISSING_MODULE_LOADER = """
import pickle, sys, flightpickle
data = sys.stdin.buffer.read()
for load in (lambda: flightpickle.loads(data), lambda: flightpickle.load(__import__("io").BytesIO(data))):
    try:
        load()
    except ModuleNotFoundError as e:
        assert isinstance(e.__cause__, ModuleNotFoundError)
        print(e.name)
        print(e)
"""


def test_missing_module_error_names_it_and_suggests_by_value(local_package, run_python, protocol):
    data = flightpickle.dumps(local_package.core.shift, protocol=protocol)
    lines = run_python(MISSING_MODULE_LOADER, stdin=data).decode().splitlines()
    assert len(lines) == 4 and lines[:2] == lines[2:]
    name, message = lines[:2]
    assert name == "localpkg_for_tests"
    assert message.startswith("No module named 'localpkg_for_tests'. ")
    assert "flightpickle.register_pickle_by_value(localpkg_for_tests)" in message


def test_a_namespace_by_value_keeps_the_keys_a_new_module_has():
    from flightpickle import _reconstruct

    # Part of a namespace: the module's own keys stay, the given ones join.
    partial = _reconstruct.dynamic_subimport("partial_namespace", {"x": 1, "__doc__": "Given."})
    assert (partial.x, partial.__doc__, partial.__name__, partial.__spec__) == (1, "Given.", "partial_namespace", None)
    # A whole namespace (as pickled with its module) replaces them all, in its order.
    whole = {"__name__": "whole_namespace", "__doc__": None, "__package__": "", "__loader__": None,
             "__spec__": None, "y": 2}
    module = _reconstruct.dynamic_subimport("whole_namespace", whole)
    assert list(vars(module)) == [*whole, "__builtins__"]
    assert (module.y, module.__package__) == (2, "")
