"""A function whose only way back to itself is a global bound to it (a
function recursive through its own name) is made in one `new_function`
call: its state names those globals and `new_function` binds them to the
function it made. Any other way back (a default, a closure cell, another
function or a class of the pickle) keeps the skeleton that a second call
fills. Every shape loads under plain `pickle.loads`."""

import io
import pickle

import flightpickle
from flightpickle import _reconstruct

# Not importable: what is defined here travels by value.
MODULE = "made_for_self_names"

COUNTDOWN = """
def countdown(n):
    return 0 if n == 0 else countdown(n - 1) + 1
"""


def define(source, **names):
    namespace = {"__name__": MODULE, **names}
    exec(source, namespace)
    return namespace


class CallCounter(pickle.Unpickler):
    """Counts the calls the pickle makes to `new_function`."""

    def __init__(self, data):
        super().__init__(io.BytesIO(data))
        self.count = 0

    def find_class(self, module, name):
        found = super().find_class(module, name)
        if name != "_new_function":
            return found

        def counted(*args):
            self.count += 1
            return found(*args)

        return counted


def calls(data):
    """How many times loading the pickle calls `new_function`."""
    counter = CallCounter(data)
    counter.load()
    return counter.count


def test_recursion_through_its_own_global_is_one_call(load_fresh):
    countdown = define(COUNTDOWN)["countdown"]
    data = flightpickle.dumps(countdown)
    assert calls(data) == 1
    loaded = pickle.loads(data)
    assert loaded(5) == 5 and loaded.__globals__["countdown"] is loaded
    check = "result = (obj(6), obj.__globals__['countdown'] is obj, obj.__name__)"
    assert load_fresh(data, check) == (6, True, "countdown")


def test_every_name_bound_to_the_function_is_bound_again():
    namespace = define(COUNTDOWN + "def twice(n):\n    return again(n) + countdown(n)\n")
    twice = namespace["twice"]
    namespace["again"] = twice
    namespace["countdown"] = twice
    # `again` and `countdown` are both `twice` itself: no skeleton.
    data = flightpickle.dumps(twice)
    assert calls(data) == 1
    loaded = pickle.loads(data)
    assert loaded.__globals__["again"] is loaded.__globals__["countdown"] is loaded


def test_the_same_function_twice_in_one_dump(load_fresh):
    countdown = define(COUNTDOWN)["countdown"]
    data = flightpickle.dumps([countdown, countdown])
    assert calls(data) == 1
    check = "result = (obj[0] is obj[1], obj[0].__globals__['countdown'] is obj[0], obj[1](3))"
    assert load_fresh(data, check) == (True, True, 3)


def test_a_self_recursive_function_held_by_another_functions_default_and_cell(load_fresh):
    namespace = define(COUNTDOWN + """
def with_default(n, step=countdown):
    return step(n)

def make_with_cell():
    step = countdown
    def with_cell(n):
        return step(n) * 2
    return with_cell
""")
    countdown, with_default = namespace["countdown"], namespace["with_default"]
    with_cell = namespace["make_with_cell"]()
    check = """
    count = [f for f in obj if f.__name__ == 'countdown'][0]
    default = [f for f in obj if f.__name__ == 'with_default'][0]
    cell = [f for f in obj if f.__name__ == 'with_cell'][0]
    result = (count.__globals__['countdown'] is count, default.__defaults__[0] is count,
              cell.__closure__[0].cell_contents is count, default(4), cell(4), count(4))
    """
    for order in ([with_default, with_cell, countdown], [countdown, with_default, with_cell]):
        data = flightpickle.dumps(order)
        assert load_fresh(data, check) == (True, True, True, 4, 8, 4)


def test_a_function_that_is_its_own_default_keeps_the_skeleton(load_fresh):
    countdown = define(COUNTDOWN)["countdown"]
    countdown.__defaults__ = (countdown,)
    data = flightpickle.dumps(countdown)
    # Made empty, then filled: the default is the function itself.
    assert calls(data) == 2
    check = "result = (obj.__defaults__[0] is obj, obj.__globals__['countdown'] is obj, obj(3))"
    assert load_fresh(data, check) == (True, True, 3)


def test_a_function_in_its_own_dict_keeps_the_skeleton(load_fresh):
    countdown = define(COUNTDOWN)["countdown"]
    countdown.me = countdown
    data = flightpickle.dumps(countdown)
    assert calls(data) == 2
    assert load_fresh(data, "result = (obj.me is obj, obj.__globals__['countdown'] is obj)") == (True, True)


def test_mutual_recursion_through_globals_keeps_the_skeleton(load_fresh):
    namespace = define("""
def is_even(n):
    return True if n == 0 else is_odd(n - 1)

def is_odd(n):
    return False if n == 0 else is_even(n - 1)

def both(n):
    return both(n - 1) if n > 2 else (is_even(n), is_odd(n))
""")
    data = flightpickle.dumps(namespace["is_even"])
    # `is_even` is made empty and filled; `is_odd`, written inside that
    # state, finds `is_even` in the memo and is one call.
    assert calls(data) == 3
    check = "odd = obj.__globals__['is_odd']; result = (obj(10), odd(7), odd.__globals__['is_even'] is obj)"
    assert load_fresh(data, check) == (True, True, True)
    # Its own global and other functions not made yet: a skeleton too (and
    # one for `is_even`, written in its state).
    data = flightpickle.dumps(namespace["both"])
    assert calls(data) == 5
    check = "g = obj.__globals__; result = (obj(9), g['both'] is obj, g['is_even'].__globals__ is g)"
    assert load_fresh(data, check) == ((True, False), True, True)


def test_a_global_named_like_the_function_but_holding_another_object(load_fresh):
    namespace = define(COUNTDOWN)
    countdown = namespace["countdown"]
    namespace["countdown"] = lambda n: -n
    data = flightpickle.dumps(countdown)
    check = "other = obj.__globals__['countdown']; result = (other is obj, other(3), obj(2))"
    # The original calls the replacement for n > 0: 0 + 1 ... = -1 + 1.
    assert load_fresh(data, check) == (False, -3, -1 + 1)
    namespace["countdown"] = 7
    data = flightpickle.dumps(countdown)
    assert load_fresh(data, "result = (obj.__globals__['countdown'], obj(0))") == (7, 0)


def test_pickler_dump_twice_with_the_same_function():
    countdown = define(COUNTDOWN)["countdown"]
    with io.BytesIO() as file:
        pickler = flightpickle.Pickler(file)
        pickler.dump(countdown)
        pickler.dump(countdown)
        file.seek(0)
        unpickler = pickle.Unpickler(file)
        first, second = unpickler.load(), unpickler.load()
    assert first is second
    assert first.__globals__["countdown"] is first and first(4) == 4


def test_a_method_that_names_its_class(load_fresh):
    namespace = define("""
class Node:
    def __init__(self, child=None):
        self.child = child

    def depth(self):
        return 1 if self.child is None else Node.depth(self.child) + 1

def chain(n):
    return Node() if n == 1 else Node(chain(n - 1))
""")
    data = flightpickle.dumps(namespace["chain"])
    check = "node = obj(4); result = (node.depth(), type(node).__name__, obj.__globals__['chain'] is obj)"
    assert load_fresh(data, check) == (4, "Node", True)
    data = flightpickle.dumps(namespace["Node"])
    assert load_fresh(data, "result = obj(obj()).depth()") == 2


def test_protocols_and_the_cloudpickle_target_load_alike(load_fresh):
    countdown = define(COUNTDOWN)["countdown"]
    for protocol in (2, 3, 4, 5):
        data = flightpickle.dumps(countdown, protocol=protocol)
        assert calls(data) == 1
        assert load_fresh(data, "result = (obj(3), obj.__globals__['countdown'] is obj)") == (3, True)
    # The cloudpickle target keeps cloudpickle's shape: a skeleton and its state.
    data = flightpickle.dumps(countdown, target="cloudpickle")
    assert b"_function_setstate" in data
    assert pickle.loads(data)(3) == 3


def test_new_function_binds_the_names_a_state_lists():
    code = define(COUNTDOWN)["countdown"].__code__
    fields = tuple(getattr(code, name) for name in CODE_FIELDS if hasattr(code, name))
    state = ("countdown", "countdown", None, None, MODULE, None, None, (), None, (), None, None, None,
             ("countdown", "alias"))
    func = _reconstruct.new_function(fields, {"__name__": MODULE}, state)
    assert func.__globals__["countdown"] is func.__globals__["alias"] is func
    assert func(3) == 3


# The arguments of `types.CodeType(...)`, by attribute; those this Python's
# code objects lack (`co_qualname`, `co_exceptiontable` before 3.11) are left out.
CODE_FIELDS = [
    "co_argcount", "co_posonlyargcount", "co_kwonlyargcount", "co_nlocals", "co_stacksize", "co_flags",
    "co_code", "co_consts", "co_names", "co_varnames", "co_filename", "co_name", "co_qualname",
    "co_firstlineno", "co_linetable", "co_exceptiontable", "co_freevars", "co_cellvars",
]
