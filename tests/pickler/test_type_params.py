"""Python 3.12's type parameter syntax (PEP 695): generic functions and
classes written `def f[T]` and `class C[T]`, and `type` aliases. They load as
cloudpickle 3.1.2's pickles of them load: a generic class keeps its
`__type_params__` (they are in its dict), a function loses its own (cloudpickle
leaves them out of a function's state), and an alias travels by reference, as
its own `__reduce__` asks."""

import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(sys.version_info < (3, 12), reason="type parameter syntax is new in 3.12")

# The source is compiled by a fresh interpreter, where the objects live in
# `__main__`, as in a script or a notebook; older Pythons cannot parse it.
SCRIPT = """
import sys, cloudpickle, flightpickle

class Base:
    pass

def first[T](items: list[T]) -> T:
    return items[0]

class Box[T: (int, str)](Base):
    def __init__(self, item: T):
        self.item = item

    def get(self) -> T:
        return self.item

    def pair[U](self, other: U) -> tuple[T, U]:
        return (self.item, other)

type Pair[K] = tuple[K, K]

sys.stdout.buffer.write({writer}.dumps({objects}, protocol=5{options}))
"""

CHECK = """
import typing
first, Box, box_int = obj
T, = Box.__type_params__
result = (first([4, 5]), first.__type_params__, repr(first.__annotations__),
          Box(3).get(), Box("a").pair(2.5), Box.__name__, [base.__name__ for base in Box.__mro__],
          type(T).__name__, T.__name__, T.__constraints__ == (int, str),
          Box.__parameters__ == (T,), Box.get.__annotations__["return"] is T,
          typing.get_origin(box_int) is Box, typing.get_args(box_int) == (int,),
          Box.pair.__type_params__)
"""

WRITERS = ["flightpickle", "cloudpickle"]


def script(writer, objects, target=None):
    """SCRIPT writing `objects` with `writer` (a module's name), to `target`."""
    options = "" if target is None else f", target={target!r}"
    return SCRIPT.format(writer=writer, objects=objects, options=options)


def written_by(run_python, writer, objects, target=None):
    return run_python(script(writer, objects, target))


def test_generic_functions_and_classes_load_fresh_as_with_cloudpickle(run_python, load_fresh):
    loaded = {writer: load_fresh(written_by(run_python, writer, "(first, Box, Box[int])"), CHECK)
              for writer in WRITERS}
    assert loaded["flightpickle"] == loaded["cloudpickle"]
    # A function's (or method's) own type parameters are lost, as with cloudpickle.
    assert loaded["flightpickle"] == (
        4, (), "{'items': list[~T], 'return': ~T}", 3, ("a", 2.5), "Box", ["Box", "Base", "Generic", "object"],
        "TypeVar", "T", True, True, True, True, True, ())


@pytest.mark.parametrize("target", ["cloudpickle", "pyspark"])
def test_the_compatible_targets_write_them_too(run_python, load_fresh, target):
    assert (load_fresh(written_by(run_python, "flightpickle", "(first, Box, Box[int])", target), CHECK)
            == load_fresh(written_by(run_python, "cloudpickle", "(first, Box, Box[int])"), CHECK))


def test_a_type_alias_travels_by_reference_as_with_cloudpickle(run_python):
    for writer in WRITERS:
        data = written_by(run_python, writer, "Pair")
        assert b"__main__" in data and b"Pair" in data and b"tuple" not in data


def test_a_type_alias_loads_where_its_module_has_it(run_python):
    loading = script("flightpickle", "Pair").replace("sys.stdout.buffer.write(", "import pickle; alias = pickle.loads(")
    assert run_python(loading + "print(alias is Pair, alias.__value__)\n").split() == [b"True", b"tuple[K,", b"K]"]


def test_generic_classes_pickle_to_the_same_bytes_in_every_run():
    writing = script("flightpickle", "(first, Box)")
    runs = {subprocess.run([sys.executable, "-I", "-c", writing], env={**os.environ, "PYTHONHASHSEED": str(seed)},
                           capture_output=True, check=True, timeout=120).stdout
            for seed in (0, 1, 12345)}
    assert len(runs) == 1
