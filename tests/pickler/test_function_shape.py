"""The native writer's function shape: `new_function` makes and fills a
function in one call, or makes a skeleton that a second `new_function` call
fills when the function's state refers back to it. Pickles of the earlier shape
(`make_function` + `function_setstate`) keep loading."""

import io
import json
import math
import pathlib
import pickle
import pickletools
import sys
import types
import xml.dom.minidom

import pytest

import flightpickle
from flightpickle import _reconstruct
from support import load_finding, names_blob

OLD_PICKLES = pathlib.Path(__file__).parent / "old_pickles"
# The stored pickles hold code objects that CPython 3.11 compiled: only a 3.11
# interpreter can run their bytecode (a code object's pickle, like
# cloudpickle's, loads only on the minor version that wrote it).
RUNS_OLD_PICKLES = pytest.mark.skipif(
    sys.version_info[:2] != (3, 11), reason="the stored pickles hold CPython 3.11 bytecode")
# Where pickles name the reconstructors (as `_<name>`), and where pickles of
# earlier releases did.
HOME = "flightpickle"
LEGACY_HOME = "flightpickle._reconstruct"
def names_found(data):
    """The object, and the reconstructors it names (in either home, without
    the underscore of the package's names)."""
    obj, found = load_finding(data)
    return obj, [name.removeprefix("_") if module == HOME else name
                 for module, name in found if module in (HOME, LEGACY_HOME)]


def homes_found(data):
    return {module for module, _ in load_finding(data)[1]}


def test_a_lambda_is_one_call_and_one_name():
    offset = 3
    data = flightpickle.dumps(lambda x: x + offset)
    func, found = names_found(data)
    assert found == ["new_function"]
    assert homes_found(data) == {HOME}
    assert func(1) == 4


def test_nested_code_is_one_more_call_of_the_same_name():
    # A lambda and (on 3.11) a comprehension inside the function: each is
    # `new_function(fields, None)`, found once with the function's own, where
    # `CodeType(...)` cost another name and a call of the type.
    def pairs(values):
        return sorted([(v, v * 2) for v in values], key=lambda pair: -pair[0])

    data = flightpickle.dumps(pairs)
    func, found = names_found(data)
    assert found == ["new_function"]
    assert b"CodeType" not in data
    assert func([1, 3, 2]) == [(3, 6), (2, 4), (1, 2)]


def test_new_function_without_globals_makes_the_code_alone():
    code = _reconstruct.new_function(LAMBDA_FIELDS, None)
    assert isinstance(code, types.CodeType) and eval(code) == 1


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_reconstructors_are_named_in_the_package(protocol):
    # An undotted module: the unpickler imports a dotted one's front package
    # again for every name it finds.
    def countdown(n):
        return 0 if n == 0 else countdown(n - 1) + 1

    class Box:
        @property
        def size(self):
            return countdown(2)

    (func, cls), found = load_finding(flightpickle.dumps([countdown, Box], protocol=protocol))
    assert func(3) == 3 and cls().size == 2
    # (Protocol 2 also names `_codecs` and `__builtin__` for the bytes.)
    assert {module for module, _ in found if "flightpickle" in module} == {HOME}
    assert {name for module, name in found if module == HOME} == {
        "_new_function", "_make_skeleton_class", "_make_descriptor"}


def test_a_recursive_function_is_filled_after_it_is_made(load_fresh):
    def countdown(n):
        return 0 if n == 0 else countdown(n - 1) + 1

    data = flightpickle.dumps(countdown)
    func, found = names_found(data)
    # `new_function` fills the skeleton too, read back from the memo: one
    # name to find.
    assert found == ["new_function"]
    assert func(4) == 4
    assert load_fresh(data, "result = obj(5)") == 5


@RUNS_OLD_PICKLES
def test_a_recursive_function_of_the_earlier_shape_still_loads(load_fresh):
    # Written when the skeleton was filled by `fill_function`, a second name.
    data = (OLD_PICKLES / "fill_function_recursive.pkl").read_bytes()
    func, found = names_found(data)
    assert found == ["new_function", "fill_function"]
    assert func(4) == 4
    assert load_fresh(data, "result = (obj(5), obj.__name__)") == (5, "countdown")


def test_new_function_fills_a_skeleton_it_is_given():
    skeleton = closure_skeleton()
    state = CLOSURE_STATE
    assert _reconstruct.new_function(skeleton, state) is None
    assert skeleton() == 7


def test_mutually_recursive_functions_load(load_fresh):
    def is_even(n):
        return True if n == 0 else is_odd(n - 1)

    def is_odd(n):
        return False if n == 0 else is_even(n - 1)

    data = flightpickle.dumps([is_even, is_odd])
    assert load_fresh(data, "result = (obj[0](10), obj[1](7), obj[0].__globals__ is obj[1].__globals__)") == (
        True,
        True,
        True,
    )


def test_a_function_that_refers_to_a_class_that_refers_back(load_fresh):
    def build():
        return Holder()

    class Holder:
        maker = build

        def again(self):
            return build()

    data = flightpickle.dumps(build)
    assert load_fresh(data, "result = type(obj()).__name__, type(obj().again()).maker is obj") == ("Holder", True)


def test_every_part_of_a_function_travels(load_fresh):
    tags = {"b", "a"}

    def make(start, *, step=2, names=frozenset({"y", "x"})):
        def count(n: int = 1, *, extra=tags) -> int:
            """Counts."""
            return start + n * step + len(names) + len(extra) + int(math.sqrt(16))

        return count

    func = make(10)
    func.kind = "counter"
    func.__name__ = "renamed"
    func.__qualname__ = "somewhere.renamed"
    func.__module__ = "elsewhere"
    check = """
result = (obj(), obj(2), obj.__name__, obj.__qualname__, obj.__module__, obj.__doc__,
          obj.__defaults__, sorted(obj.__kwdefaults__["extra"]), obj.__annotations__ == {"n": int, "return": int},
          obj.kind, sorted(obj.__code__.co_freevars))
"""
    expected = (10 + 2 + 2 + 2 + 4, 10 + 4 + 2 + 2 + 4, "renamed", "somewhere.renamed", "elsewhere", "Counts.",
                (1,), ["a", "b"], True, "counter", ["names", "start", "step"])
    assert load_fresh(flightpickle.dumps(func), check) == expected


def test_an_empty_cell_stays_empty(load_fresh):
    def outer():
        def inner():
            return later  # noqa: F821

        return inner
        later = 1  # noqa: F841

    check = """
try:
    obj()
    result = "filled"
except NameError:
    result = "empty"
"""
    assert load_fresh(flightpickle.dumps(outer()), check) == "empty"


def test_functions_sharing_code_and_globals_still_share_globals():
    def make(n):
        return lambda: n + SHARED  # noqa: F821

    globals()["SHARED"] = 1
    try:
        first, second = pickle.loads(flightpickle.dumps([make(1), make(2)]))
    finally:
        del globals()["SHARED"]
    assert (first(), second()) == (2, 3)
    assert first.__globals__ is second.__globals__


def test_the_writers_shape_loads_as_pickler_output_does(load_fresh):
    def scaled(x, factor=2):
        return x * factor

    with io.BytesIO() as file:
        flightpickle.Pickler(file).dump(scaled)
        through_pickler = file.getvalue()
    check = "result = (obj(3), obj.__name__, obj.__defaults__)"
    assert load_fresh(flightpickle.dumps(scaled), check) == load_fresh(through_pickler, check) == (6, "scaled", (2,))


@RUNS_OLD_PICKLES
@pytest.mark.parametrize("name, check, expected", [
    ("counter", "f, make = obj; result = (f(), f(3), f.kind, f.__qualname__, make.__doc__)",
     (10 + 2 + 2 + 4, 10 + 6 + 2 + 4, "counter", "make_counter.<locals>.count", "Counts up from start.")),
    ("fibonacci", "result = obj(10)", 55),
    ("empty_cell", "result = obj.__closure__[0].cell_contents if False else len(obj.__closure__)", 1),
    ("shape", "result = obj(4).describe()", "Shape with 4 sides"),
])
def test_pickles_of_the_earlier_shape_still_load(load_fresh, name, check, expected):
    data = (OLD_PICKLES / f"{name}.pkl").read_bytes()
    _, found = names_found(data)
    assert "make_function" in found and "new_function" not in found
    assert load_fresh(data, check) == expected


@RUNS_OLD_PICKLES
@pytest.mark.parametrize("name, check, expected", [
    ("recursive_dict_state", "result = (obj(12345), obj.__globals__['digits'] is obj, obj.__doc__.split()[0])",
     (5, True, "Counts")),
    ("globals_dict_state", "result = (obj(3, 4), obj.__globals__['math'].__name__, obj.__globals__['BASE'])",
     (8.0, "math", 3)),
])
def test_pickles_with_dicts_in_the_state_still_load(load_fresh, name, check, expected):
    # Written while the used globals and the module globals were dicts, and
    # a function recursive through its own global was a skeleton filled by a
    # second `new_function` call.
    data = (OLD_PICKLES / f"{name}.pkl").read_bytes()
    _, found = names_found(data)
    assert found == ["new_function"]
    assert homes_found(data) == {HOME}
    assert load_fresh(data, check) == expected
    ops = [op.name for op, _, _ in pickletools.genops(data)]
    assert "SETITEMS" in ops
    assert ops.count("REDUCE") == (2 if name == "recursive_dict_state" else 1)


def test_flat_globals_set_each_name_and_keep_the_loaders_builtins():
    import builtins
    state = plain_state(used_globals=("A", 1, "__builtins__", {"len": None}, "B", (2, 3)))
    state = state[:12] + (("m", "math"),)
    func = _reconstruct.new_function(LAMBDA_FIELDS, {"__name__": "m"}, state)
    assert (func.__globals__["A"], func.__globals__["B"], func.__globals__["m"]) == (1, (2, 3), math)
    assert func.__globals__["__builtins__"] is builtins.__dict__


@RUNS_OLD_PICKLES
@pytest.mark.parametrize("name, check, expected", [
    ("new_function_lambda", "result = (obj(4), obj.__name__)", (19, "<lambda>")),
    ("new_function_closure", "result = (obj(1), obj.__qualname__)", (19, "make_scaler.<locals>.scaled")),
])
def test_pickles_naming_the_earlier_home_still_load(load_fresh, name, check, expected):
    data = (OLD_PICKLES / f"{name}.pkl").read_bytes()
    _, found = names_found(data)
    assert found == ["new_function"]
    assert homes_found(data) == {LEGACY_HOME}
    assert load_fresh(data, check) == expected


CODE_FIELDS = [
    "co_argcount", "co_posonlyargcount", "co_kwonlyargcount", "co_nlocals", "co_stacksize", "co_flags",
    "co_code", "co_consts", "co_names", "co_varnames", "co_filename", "co_name", "co_qualname",
    "co_firstlineno", "co_linetable", "co_exceptiontable", "co_freevars", "co_cellvars",
]


def code_fields(code):
    """The arguments of `types.CodeType(...)` for this Python."""
    names = CODE_FIELDS if sys.version_info >= (3, 11) else [
        name for name in CODE_FIELDS if name not in ("co_qualname", "co_exceptiontable")]
    return tuple(getattr(code, name) for name in names)


def closure_skeleton():
    """A function made from a closure's code alone: its one cell still empty."""

    def outer():
        value = 5

        def inner():
            return value

        return inner

    return _reconstruct.new_function(code_fields(outer().__code__), {"__name__": "m"})


#: The state that fills `closure_skeleton()`'s function, its cell with 7.
CLOSURE_STATE = ("inner", "outer.<locals>.inner", None, None, "m", None, None, {}, (7,), (), None, None, None)


def plain_state(closure_values=None, used_globals=None):
    return ("f", "f", None, None, None, None, None, {} if used_globals is None else used_globals,
            closure_values, (), None, None, None)


LAMBDA_FIELDS = code_fields((lambda: 1).__code__)


@pytest.mark.parametrize("call, error, message", [
    (lambda: _reconstruct.new_function("code", {}), TypeError, "code_fields"),
    (lambda: _reconstruct.new_function(("not", "code", "fields"), {}), TypeError, "arguments"),
    (lambda: _reconstruct.new_function(LAMBDA_FIELDS, [], None), TypeError, "globals"),
    (lambda: _reconstruct.new_function(LAMBDA_FIELDS, {}, ("f",)), ValueError, "13 items"),
    (lambda: _reconstruct.new_function(LAMBDA_FIELDS, {}, (1,)), ValueError, "has bits 1 and 0 items"),
    (lambda: _reconstruct.new_function(LAMBDA_FIELDS, {}, (1 << 14, "x")), ValueError, "bits below 2\\*\\*14"),
    (lambda: _reconstruct.new_function(LAMBDA_FIELDS, {}, (-1, "x")), ValueError, "compact state"),
    (lambda: _reconstruct.new_function(LAMBDA_FIELDS, {}, "state"), TypeError, "state"),
    (lambda: _reconstruct.new_function(LAMBDA_FIELDS, None, plain_state()), TypeError, "takes no state"),
    (lambda: _reconstruct.new_function(LAMBDA_FIELDS, None, None, (0,)), TypeError, "takes no state"),
    (lambda: _reconstruct.fill_function(42, plain_state()), TypeError, "expects a function"),
    (lambda: _reconstruct.new_function(lambda: 1, "state"), TypeError, "state must be a tuple"),
    (lambda: _reconstruct.new_function(lambda: 1, plain_state(), plain_state()), TypeError, "no third argument"),
    (lambda: _reconstruct.new_function(lambda: 1, ("f",)), ValueError, "13 items"),
    (lambda: _reconstruct.new_function(lambda: 1, (0b11, "f")), ValueError, "has bits 3 and 1 items"),
    (lambda: _reconstruct.new_function(lambda: 1, plain_state(), None, (1,)), TypeError, "no fourth argument"),
    (lambda: _reconstruct.new_function(LAMBDA_FIELDS, {}, None, ()), ValueError, "identity"),
    (lambda: _reconstruct.new_function(LAMBDA_FIELDS, {}, None, ("3", "p", "m")), ValueError, "identity"),
    (lambda: _reconstruct.new_function(LAMBDA_FIELDS, {}, None, (True, "m")), ValueError, "identity"),
    (lambda: _reconstruct.new_function(LAMBDA_FIELDS, {}, None, (0b11, "m")), ValueError, "identity"),
    (lambda: _reconstruct.new_function(LAMBDA_FIELDS, {}, None, (0b10000, "x")), ValueError, "identity"),
    (lambda: _reconstruct.new_function(LAMBDA_FIELDS, {}, None, "identity"), TypeError, "identity"),
    (lambda: _reconstruct.fill_function(lambda: 1, plain_state(used_globals=[])), TypeError,
     "used globals must be a dict"),
    (lambda: _reconstruct.fill_function(lambda: 1, plain_state(closure_values=(1,))), ValueError, "closure size"),
    (lambda: _reconstruct.fill_function(lambda: 1, plain_state(closure_values="x")), TypeError,
     "closure values must be a tuple"),
    (lambda: _reconstruct.fill_function(lambda: 1, ("f", 5) + plain_state()[2:]), TypeError, "__qualname__"),
    (lambda: _reconstruct.fill_function(lambda: 1, plain_state()[:12] + ({"m": "no_such_module_here"},)),
     ModuleNotFoundError, "no_such_module_here"),
    (lambda: _reconstruct.fill_function(lambda: 1, plain_state()[:12] + ({"m": 5},)), TypeError, "not an instance of 'str'"),
    (lambda: _reconstruct.fill_function(lambda: 1, plain_state()[:11] + ((5,), None)), TypeError, "not an instance of 'str'"),
    (lambda: _reconstruct.fill_function(lambda: 1, plain_state(used_globals=("A", 1, "B"))), ValueError,
     "used globals must alternate names and values, got 3 items"),
    (lambda: _reconstruct.fill_function(lambda: 1, plain_state()[:12] + (("m",),)), ValueError,
     "module globals must alternate"),
    (lambda: _reconstruct.fill_function(lambda: 1, plain_state()[:12] + (["m", "math"],)), TypeError,
     "module globals must be None, a flat tuple or a dict"),
    (lambda: _reconstruct.fill_function(lambda: 1, plain_state()[:12] + (("m", 5),)), TypeError,
     "not an instance of 'str'"),
    (lambda: _reconstruct.fill_function(lambda: 1, plain_state() + (["f"],)), TypeError,
     "names bound to a function itself must be a tuple"),
    (lambda: _reconstruct.fill_function(lambda: 1, plain_state() + ((), None)), ValueError, "15"),
])
def test_bad_input_is_a_clear_error(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_a_skeleton_has_empty_cells_to_fill():
    skeleton = closure_skeleton()
    assert isinstance(skeleton, types.FunctionType)
    assert len(skeleton.__closure__) == 1
    with pytest.raises(ValueError):
        skeleton.__closure__[0].cell_contents
    state = CLOSURE_STATE
    _reconstruct.fill_function(skeleton, state)
    assert skeleton() == 7
    assert skeleton.__module__ == "m"


# The code object's fields are pickled once per code object and replayed
# with their memo reads shifted (protocol 4 and above).


def test_repeated_dumps_write_the_same_bytes(protocol):
    def scale(values, factor=2):
        return [value * factor for value in values if value]

    first = flightpickle.dumps(scale, protocol=protocol)
    assert flightpickle.dumps(scale, protocol=protocol) == first
    assert pickle.loads(first)([1, 0, 3]) == [2, 6]


def test_a_replayed_code_reads_its_memo_after_other_objects(protocol, load_fresh):
    def words(text):
        # Names repeated between co_names, co_varnames and nested code make
        # the recording read its own memo.
        text = text.strip()
        return [word.upper() for word in text.split() if word != text]

    flightpickle.dumps(words, protocol=protocol)  # recorded here, replayed below
    shared = ["strip", "upper", "words"]
    data = flightpickle.dumps([shared, "text", shared, words, words], protocol=protocol)
    check = "result = (obj[0] is obj[2], obj[3] is obj[4], obj[3]('a b'), obj[1])"
    assert load_fresh(data, check) == (True, True, ["A", "B"], "text")


def test_a_code_objects_unshared_parts_are_not_memoized():
    def scale(values):
        return [value * 2.5 for value in values if value]

    data = flightpickle.dumps(scale)
    ops = [(op.name, arg) for op, arg, _ in pickletools.genops(data)]
    read = {arg for name, arg in ops if name == "BINGET"}
    # The name blobs are shared by content, as strings are by text (see
    # test_replayed_code_shares_strings_with_the_rest_of_the_pickle).
    codes = [scale.__code__] + [c for c in scale.__code__.co_consts if isinstance(c, types.CodeType)]
    blobs = {names_blob(code) for code in codes}
    # Each code's body (its counts, bytecode, line and exception tables;
    # see test_code_body.py): bytes that no other object of the pickle
    # reads, written without a memo entry.
    memo_index = 0
    unread_bytes = bytes_seen = 0
    for (name, arg), (following, _) in zip(ops, ops[1:]):
        if name == "SHORT_BINBYTES" and arg not in blobs:
            bytes_seen += 1
            if following == "MEMOIZE":
                unread_bytes += memo_index not in read
        memo_index += name == "MEMOIZE"
    # 3.12 inlines the comprehension into `scale` (PEP 709): one code object.
    code_objects = 2 if sys.version_info < (3, 12) else 1
    assert bytes_seen == code_objects and unread_bytes == 0
    assert pickle.loads(data)([1, 0, 2]) == [2.5, 5.0]
    assert flightpickle.dumps(scale) == data


def test_an_empty_dict_in_a_functions_state_is_one_op():
    data = flightpickle.dumps(lambda x: x + 1)
    # The globals it uses: none, so EMPTY_DICT without MARK and SETITEMS.
    assert b"}(u" not in data
    assert pickle.loads(data)(1) == 2


def test_functions_sharing_a_code_object_read_its_fields_back():
    def make(n):
        def add(x):
            return x + n

        return add

    adders = [make(n) for n in range(5)]
    data = flightpickle.dumps(adders)
    # The code (its bytecode, its qualname) is written once for all five.
    assert data.count(adders[0].__code__.co_code) == 1
    assert data.count(b"<locals>.add") == 1
    loaded = pickle.loads(data)
    assert [add(10) for add in loaded] == [10, 11, 12, 13, 14]


def test_changed_defaults_travel_on_the_next_dump():
    def greet(name, greeting="hello"):
        return f"{greeting} {name}"

    assert pickle.loads(flightpickle.dumps(greet))("x") == "hello x"
    greet.__defaults__ = ("bye",)
    assert pickle.loads(flightpickle.dumps(greet))("x") == "bye x"


def test_modules_travel_by_name_and_are_imported_on_load(load_fresh):
    def describe(value):
        # xml.dom.minidom is reached through the package: a submodule to import.
        return math.floor(value), xml.dom.minidom.__name__, json.dumps(value)

    data = flightpickle.dumps(describe)
    _, found = names_found(data)
    assert found == ["new_function"]  # no subimport call per module
    check = "import sys; result = (obj(2.5), 'xml.dom.minidom' in sys.modules)"
    assert load_fresh(data, check) == ((2, "xml.dom.minidom", "2.5"), True)


def test_replayed_code_shares_strings_with_the_rest_of_the_pickle():
    def first(values):
        return [value for value in values]

    def second(values):
        return [value for value in values]

    for func in (first, second):
        flightpickle.dumps(func)  # both recorded before they meet in one pickle
    data = flightpickle.dumps([first, second])
    # The file name and the shared local names are written once for both.
    assert data.count(f"<{pathlib.Path(__file__).name}>".encode()) == 1
    assert data.count(b"values") == 1
    loaded_first, loaded_second = pickle.loads(data)
    assert loaded_first([1, 2]) == loaded_second([1, 2]) == [1, 2]


@pytest.mark.parametrize("module, expected", [("m", "m"), (None, None)])
def test_a_function_whose_globals_have_no_name_gets_the_module_of_its_state(module, expected):
    state = ("f", "f", None, None, module, None, None, {}, None, (), None, None, None)
    func = _reconstruct.new_function(LAMBDA_FIELDS, {}, state)
    assert func.__module__ == expected
    assert func() == 1


def test_state_that_differs_from_what_the_function_derives_is_set():
    state = ("renamed", "Outer.renamed", None, None, "other", "the doc", None, {}, None, (), None, None, None)
    func = _reconstruct.new_function(LAMBDA_FIELDS, {"__name__": "m"}, state)
    assert (func.__name__, func.__qualname__, func.__module__, func.__doc__) == (
        "renamed", "Outer.renamed", "other", "the doc")


IDENTITY_KEYS = ("__package__", "__name__", "__path__", "__file__")


def test_a_modules_identity_travels_beside_an_empty_stand_in(load_fresh):
    def scaled(x):
        return x * SCALE  # noqa: F821

    data = flightpickle.dumps(scaled)
    # Set by `new_function` from a fourth argument: no key names to decode.
    for key in IDENTITY_KEYS:
        assert key.encode() not in data
    check = ("g = obj.__globals__; result = (obj.__module__, "
             "{k: g[k] for k in ('__package__', '__name__', '__file__', '__path__') if k in g})")
    expected = {key: globals()[key] for key in IDENTITY_KEYS if key in globals()}
    assert load_fresh(data, check) == (__name__, expected)


def test_the_identity_is_sent_once_for_the_functions_of_one_module():
    def first():
        return 1

    def second():
        return 2

    data = flightpickle.dumps([first, second, first])
    assert data.count(__file__.encode()) == 1
    loaded = pickle.loads(data)
    assert loaded[0] is loaded[2]
    assert loaded[0].__globals__ is loaded[1].__globals__
    assert loaded[1].__globals__["__name__"] == __name__
    assert (loaded[0](), loaded[1]()) == (1, 2)


def test_identity_sets_the_keys_present_in_their_order():
    identity = (0b1011, "pkg", "pkg.mod", "/pkg/mod.py")
    func = _reconstruct.new_function(LAMBDA_FIELDS, {}, None, identity)
    assert list(func.__globals__.items())[:3] == [
        ("__package__", "pkg"), ("__name__", "pkg.mod"), ("__file__", "/pkg/mod.py")]
    assert "__path__" not in func.__globals__
    assert func.__module__ == "pkg.mod"
    package = _reconstruct.new_function(LAMBDA_FIELDS, {}, None, (0b0110, "pkg", ["/pkg"]))
    assert (package.__globals__["__name__"], package.__globals__["__path__"]) == ("pkg", ["/pkg"])


PACKAGE_FROM_NAME = 0b10000


@pytest.mark.parametrize("identity, package", [
    ((PACKAGE_FROM_NAME | 0b1010, "pkg.sub.mod", "/pkg/sub/mod.py"), "pkg.sub"),
    ((PACKAGE_FROM_NAME | 0b0010, "toplevel"), ""),
    ((PACKAGE_FROM_NAME | 0b0110, "pkg.sub", ["/pkg/sub"]), "pkg.sub"),
])
def test_identity_derives_the_package_from_the_name(identity, package):
    func = _reconstruct.new_function(LAMBDA_FIELDS, {}, None, identity)
    assert func.__globals__["__package__"] == package
    # In the order the keys of a module's own globals have.
    assert list(func.__globals__)[:2] == ["__package__", "__name__"]


@pytest.mark.parametrize("identity", [
    (PACKAGE_FROM_NAME | 0b0011, "pkg", "pkg.mod"),  # sent and derived
    (PACKAGE_FROM_NAME | 0b1000, "/pkg/mod.py"),  # nothing to derive it from
    (PACKAGE_FROM_NAME << 1 | 0b0010, "pkg.mod"),  # an unknown bit
])
def test_a_malformed_derived_package_is_a_clear_error(identity):
    with pytest.raises(ValueError, match="identity"):
        _reconstruct.new_function(LAMBDA_FIELDS, {}, None, identity)
    with pytest.raises(TypeError, match="__name__ that is a str"):
        _reconstruct.new_function(LAMBDA_FIELDS, {}, None, (PACKAGE_FROM_NAME | 0b0010, 5))


@pytest.mark.parametrize("package, name, has_path, derived", [
    ("pkg", "pkg.mod", False, True),
    ("pkg.mod", "pkg.mod", True, True),
    ("", "mod", False, True),
    ("other", "pkg.mod", False, False),
    (None, "__main__", False, False),
])
def test_the_writer_sends_a_package_only_when_the_name_does_not_give_it(package, name, has_path, derived):
    namespace = {"__name__": name, "__package__": package, "__file__": "/somewhere/mod.py"}
    if has_path:
        namespace["__path__"] = ["/somewhere"]
    exec("def answer():\n    return 42\n", namespace)
    data = flightpickle.dumps(namespace["answer"])
    loaded = pickle.loads(data)
    assert loaded.__globals__["__package__"] == package and loaded() == 42
    identity = [arg for op, arg, _ in pickletools.genops(data) if op.name == "BININT1"][-1]
    assert bool(identity & PACKAGE_FROM_NAME) == derived


def test_a_picklers_later_dumps_read_the_stand_in_it_wrote():
    def first():
        return 1

    def second():
        return 2

    with io.BytesIO() as file:
        pickler = flightpickle.Pickler(file)
        pickler.dump(first)
        pickler.dump(second)
        file.seek(0)
        unpickler = pickle.Unpickler(file)
        loaded_first, loaded_second = unpickler.load(), unpickler.load()
    assert loaded_first.__globals__ is loaded_second.__globals__
    assert loaded_second.__globals__["__name__"] == __name__
    assert (loaded_first(), loaded_second()) == (1, 2)
