"""A function's state in native pickles, compact: `(bits, *items)`, bit `i`
set when the item at position `i` of the full `FunctionState` follows (see
`reconstruct/functions.rs`). What `PyFunction_New` derives on load (the
name and qualname from the code, the module from the globals' `__name__`,
the doc from the first constant) and what is empty is left out; anything
that differs travels. Full states of earlier releases still load.
"""

import io
import math
import pickle
import types

import pytest

import flightpickle
from flightpickle import _reconstruct

NAME, QUALNAME, DEFAULTS, KWDEFAULTS, MODULE, DOC, ANNOTATIONS, USED_GLOBALS = range(8)
CLOSURE, EMPTY_CELLS, ATTRS, SUBMODULES, MODULE_GLOBALS, SELF_NAMES = range(8, 14)

SUBJECTS = '''
import math
OFFSET = 7

def hypotenuse(a, b):
    """The long side."""
    return math.sqrt(a * a + b * b) + OFFSET

def no_doc():
    return "a constant, not a doc"

def countdown(n):
    return n if n <= 0 else countdown(n - 1)
'''


def subjects():
    namespace = {"__name__": "compact_state_subjects"}
    exec(SUBJECTS, namespace)
    return namespace


def bits(*positions):
    return sum(1 << position for position in positions)


def calls_of(data):
    """The arguments of each `new_function` call while `data` loads, and
    the object loaded."""
    calls = []

    def recording(*args):
        calls.append(args)
        return flightpickle._new_function(*args)

    class Recording(pickle.Unpickler):
        def find_class(self, module, name):
            if (module, name) == ("flightpickle", "_new_function"):
                return recording
            return super().find_class(module, name)

    return calls, Recording(io.BytesIO(data)).load()


def states_of(data):
    """Each state `new_function` is given while `data` loads: as
    `new_function(fields, globals, state)`, or, filling a skeleton,
    `new_function(func, state)`; and the object loaded."""
    calls, loaded = calls_of(data)
    states = [args[1] if isinstance(args[0], types.FunctionType) else args[2] if len(args) > 2 else None
              for args in calls]
    return [state for state in states if state is not None], loaded


def test_a_plain_function_sends_only_its_globals():
    hypotenuse = subjects()["hypotenuse"]
    (state,), loaded = states_of(flightpickle.dumps(hypotenuse))
    assert state[0] == bits(USED_GLOBALS, MODULE_GLOBALS) and len(state) == 3
    assert loaded(3, 4) == 12.0
    assert (loaded.__name__, loaded.__qualname__, loaded.__module__, loaded.__doc__) == (
        "hypotenuse", "hypotenuse", "compact_state_subjects", "The long side.")
    assert loaded.__globals__["math"] is math


def test_a_lambda_sends_nothing_it_can_derive():
    (state,), loaded = states_of(flightpickle.dumps(lambda: 1))
    assert state == (0,)
    assert loaded() == 1 and loaded.__name__ == "<lambda>" and loaded.__doc__ is None


def test_a_first_constant_that_is_no_doc_stays_no_doc():
    no_doc = subjects()["no_doc"]
    (state,), loaded = states_of(flightpickle.dumps(no_doc))
    assert state == (0,)
    assert loaded.__doc__ is None and loaded() == "a constant, not a doc"


def renamed(func):
    func.__name__ = "other"


def requalified(func):
    func.__qualname__ = "Somewhere.other"


def moved(func):
    func.__module__ = "elsewhere"


def undocumented(func):
    func.__doc__ = None


def redocumented(func):
    func.__doc__ = "Another doc."


@pytest.mark.parametrize("change, position, attribute", [
    (renamed, NAME, "__name__"),
    (requalified, QUALNAME, "__qualname__"),
    (moved, MODULE, "__module__"),
    (undocumented, DOC, "__doc__"),
    (redocumented, DOC, "__doc__"),
])
def test_what_differs_from_what_the_load_derives_travels(change, position, attribute):
    hypotenuse = subjects()["hypotenuse"]
    change(hypotenuse)
    (state,), loaded = states_of(flightpickle.dumps(hypotenuse))
    assert state[0] == bits(position, USED_GLOBALS, MODULE_GLOBALS)
    assert getattr(loaded, attribute) == getattr(hypotenuse, attribute)


def test_a_doc_given_to_a_function_without_one_travels():
    no_doc = subjects()["no_doc"]
    no_doc.__doc__ = "a constant, not a doc"  # equal to its first str constant, not derived from it
    (state,), loaded = states_of(flightpickle.dumps(no_doc))
    assert state == (bits(DOC), "a constant, not a doc")
    assert loaded.__doc__ == "a constant, not a doc"


def test_every_item_takes_its_bit():
    tags = {"b", "a"}

    def make(start):
        def count(n: int = 1, *, extra=tags) -> int:
            return start + n + len(extra) + math.floor(1.5) + later  # noqa: F821

        return count
        later = 0  # noqa: F841

    func = make(10)
    func.kind = "counter"
    (state,), loaded = states_of(flightpickle.dumps(func))
    assert state[0] == bits(DEFAULTS, KWDEFAULTS, ANNOTATIONS, CLOSURE, EMPTY_CELLS, ATTRS, MODULE_GLOBALS)
    assert loaded.__defaults__ == (1,) and loaded.__kwdefaults__ == {"extra": tags}
    assert loaded.__annotations__ == {"n": int, "return": int} and loaded.kind == "counter"
    assert loaded.__qualname__ == func.__qualname__
    cells = [cell for cell in loaded.__closure__]
    with pytest.raises(ValueError):
        cells[loaded.__code__.co_freevars.index("later")].cell_contents


def test_a_function_bound_to_its_own_name_sends_that_name():
    countdown = subjects()["countdown"]
    (state,), loaded = states_of(flightpickle.dumps(countdown))
    assert state[0] == bits(SELF_NAMES)
    assert loaded(3) == 0 and loaded.__globals__["countdown"] is loaded


def fields_of(func):
    """The code fields `new_function` gets for `func` on load."""
    calls, _ = calls_of(flightpickle.dumps(func))
    return calls[0][0]


def test_hand_written_compact_states_load():
    template = lambda x: x * 2  # noqa: E731
    fields = fields_of(template)
    made = _reconstruct.new_function(fields, {"__name__": "m"}, (bits(NAME, DOC), "twice", "Doubles."))
    assert (made(4), made.__name__, made.__qualname__, made.__doc__, made.__module__) == (
        8, "twice", template.__qualname__, "Doubles.", "m")
    filled = _reconstruct.new_function(fields, {"__name__": "m"}, None)
    _reconstruct.fill_function(filled, (bits(MODULE, USED_GLOBALS), "n", ("FACTOR", 3)))
    assert filled.__module__ == "n" and filled.__globals__["FACTOR"] == 3


def test_inspection_finds_the_modules_and_names_of_compact_states():
    # The Rust inspector reads a compact state by its bits: a policy on
    # modules must see those the state imports by name, wherever they sit.
    from flightpickle.inspection import inspect_payload

    namespace = subjects()
    exec("import concurrent.futures\ndef joined(a):\n    return concurrent.futures.wait(a)\n", namespace)
    helpers = [namespace["hypotenuse"], namespace["joined"], namespace["countdown"]]
    found = inspect_payload(flightpickle.dumps(helpers))
    # `concurrent` a module global, `concurrent.futures` a submodule the
    # code reaches through it: the state's items 12 and 11.
    assert {"math", "concurrent", "concurrent.futures"} <= set(found.modules)
    names = [item.name for item in found.by_value]
    assert names == ["hypotenuse", "joined", "countdown"]
