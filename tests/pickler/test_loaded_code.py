"""Loads take the code object an earlier load made from the same fields
(`reconstruct/loaded_code.rs`): from its second load on, the same function
shares its code, and code that differs in anything, even a constant `==`
calls equal, does not."""

import math
import pickle
import subprocess
import sys
import textwrap

import pytest

import flightpickle
from flightpickle import _native


@pytest.fixture(autouse=True)
def empty_cache():
    _native._forget_loaded_code()
    yield
    _native._forget_loaded_code()


def loads(payload, times=3):
    """`times` loads of `payload`: the second load keeps its code, and the
    later ones take it."""
    return [pickle.loads(payload) for _ in range(times)]


def made(source, name="f"):
    """A function defined by `source`, as a notebook cell would define it."""
    namespace = {"__name__": "__main__"}
    exec(compile(textwrap.dedent(source), "<cell>", "exec"), namespace)
    return namespace[name]


def test_a_function_loaded_twice_shares_its_code():
    func = made('def f(x, *, scale=2.5):\n    """Doc."""\n    return (x * scale, "label", b"raw", None, ...)\n')
    payload = flightpickle.dumps(func)
    first = pickle.loads(payload)
    assert _native._loaded_code_count() == 0  # a first load keeps nothing
    _, second, third = [first, *loads(payload, 2)]
    assert second is not third
    assert second.__code__ is third.__code__
    assert first.__code__ is not second.__code__ and second.__code__ is not func.__code__
    assert first(2) == third(2) == (5.0, "label", b"raw", None, ...)
    assert _native._loaded_code_count() == 1


def test_code_with_code_among_its_constants_is_shared_with_it():
    # The nested code travels as a function's code does, so it is kept from
    # its second load on, and the code that holds it, whose constants then
    # hold that very object, is found from the third.
    func = made("def f(x):\n    return sorted(x, key=lambda item: -item), [v * 2 for v in x]\n")
    payload = flightpickle.dumps(func)
    assert b"CodeType" not in payload
    first, second, third, fourth = loads(payload, 4)
    assert first.__code__ is not second.__code__
    assert second.__code__ is third.__code__ is fourth.__code__
    nested = [const for const in third.__code__.co_consts if hasattr(const, "co_code")]
    assert len(nested) == (2 if sys.version_info < (3, 12) else 1)
    assert [const.co_name for const in nested] == [const.co_name for const in func.__code__.co_consts
                                                   if hasattr(const, "co_code")]
    assert first([1, 3, 2]) == fourth([1, 3, 2]) == ([3, 2, 1], [2, 6, 4])
    assert _native._loaded_code_count() == 1 + len(nested)


def test_code_made_as_codetype_among_the_constants_is_new_on_every_load():
    # Pickles of earlier releases, and protocols before 4, send a nested
    # code as `CodeType(...)`: a new object each load, so the code that
    # holds it is never found.
    func = made("def f(x):\n    return sorted(x, key=lambda item: -item)\n")
    payload = flightpickle.dumps(func, protocol=2)
    assert b"CodeType" in payload
    _, second, third = loads(payload)
    assert second.__code__ is not third.__code__
    assert third([1, 3, 2]) == [3, 2, 1]


def test_closures_sharing_code_keep_their_own_cells():
    maker = made("def make(n):\n    def f(x):\n        return x + n\n    return f\n", "make")
    _, one, two = [pickle.loads(flightpickle.dumps(maker(n))) for n in (0, 1, 2)]
    assert one.__code__ is two.__code__
    assert (one(10), two(10)) == (11, 12)


@pytest.mark.parametrize("constants", [("0", "0.0", "False", "-0.0"), ("1", "1.0", "True", "(1+0j)")])
def test_constants_that_compare_equal_make_codes_of_their_own(constants):
    funcs = [made(f"def f():\n    return {constant}\n") for constant in constants]
    loaded = [loads(flightpickle.dumps(func), 2)[-1] for func in funcs]
    for func, copy in zip(funcs, loaded):
        assert repr(copy()) == repr(func())
        assert type(copy()) is type(func())
        # And again, now that each is cached.
        again = pickle.loads(flightpickle.dumps(func))
        assert repr(again()) == repr(func())
        assert again.__code__ is copy.__code__
    assert len({id(copy.__code__) for copy in loaded}) == len(constants)


def test_nan_constants_are_found_again():
    func = made("def f():\n    return -float('nan'), 1e308 * 10\n")
    _, first, second = loads(flightpickle.dumps(func))
    assert first.__code__ is second.__code__
    assert math.isnan(second()[0]) and second()[1] == math.inf


def test_codes_that_differ_only_in_a_name_or_a_line_are_apart():
    funcs = [
        made("def f(x):\n    return x\n"),
        made("def f(y):\n    return y\n"),
        made("\ndef f(x):\n    return x\n"),
        made("def g(x):\n    return x\n", "g"),
    ]
    codes = {id(loads(flightpickle.dumps(func))[-1].__code__) for func in funcs}
    assert len(codes) == len(funcs)


def test_a_frozenset_constant_leaves_the_code_uncached():
    func = made("def f(x):\n    return x in {1, 2, 3}\n")
    _, second, third = loads(flightpickle.dumps(func))
    assert second.__code__ is not third.__code__
    assert third(2) and not third(5)
    assert _native._loaded_code_count() == 0


def test_forgetting_makes_the_next_load_make_its_code():
    payload = flightpickle.dumps(made("def f():\n    return 7\n"))
    first = loads(payload)[-1]
    assert _native._loaded_code_count() == 1
    _native._forget_loaded_code()
    assert _native._loaded_code_count() == 0
    second = pickle.loads(payload)
    assert second.__code__ is not first.__code__
    assert second() == 7


def test_the_cache_is_bounded():
    for number in range(1100):
        loads(flightpickle.dumps(made(f"def f():\n    return {number}\n")), 2)
    assert 0 < _native._loaded_code_count() <= 1024


def test_an_audit_hook_sees_every_load_of_a_code():
    # Audit hooks cannot be removed: a fresh interpreter of its own.
    script = textwrap.dedent(
        """
        import pickle, sys
        import flightpickle
        namespace = {"__name__": "__main__"}
        exec("def f(x):\\n    return x + 1\\n", namespace)
        payload = flightpickle.dumps(namespace["f"])
        seen = []
        sys.addaudithook(lambda event, args: event == "code.__new__" and seen.append(args[2]))
        first, second, third = (pickle.loads(payload) for _ in range(3))
        assert second.__code__ is third.__code__
        print(seen)
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "['f', 'f', 'f']"


def test_an_audit_hook_that_refuses_code_refuses_a_cached_one_too():
    script = textwrap.dedent(
        """
        import pickle, sys
        import flightpickle
        namespace = {"__name__": "__main__"}
        exec("def f(x):\\n    return x + 1\\n", namespace)
        payload = flightpickle.dumps(namespace["f"])
        pickle.loads(payload), pickle.loads(payload)
        def refuse(event, args):
            if event == "code.__new__":
                raise RuntimeError("no code from pickles here")
        sys.addaudithook(refuse)
        try:
            pickle.loads(payload)
        except RuntimeError as error:
            print(error)
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "no code from pickles here"
