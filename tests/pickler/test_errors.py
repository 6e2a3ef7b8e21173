"""Failures keep pickle's exception, plus a note with the path to the part
that could not be pickled."""

import pickle
import sys
import threading

import pytest

import flightpickle

needs_notes = pytest.mark.skipif(sys.version_info < (3, 11), reason="exception notes are 3.11+")


class Session:
    def __init__(self):
        self._lock = threading.Lock()
        self.name = "session"


class Model:
    def __init__(self):
        self.session = Session()
        self.weights = [1, 2]


def notes_of(obj):
    with pytest.raises(TypeError, match="cannot pickle '_thread.lock' object") as error:
        flightpickle.dumps(obj)
    return getattr(error.value, "__notes__", [])


@needs_notes
def test_path_through_globals_and_attributes():
    model = Model()

    def udf(x):
        return model.weights[0] * x

    assert notes_of(udf) == [
        "flightpickle: the part that could not be pickled is "
        "udf.__closure__[0].cell_contents.session._lock"
    ]


@needs_notes
def test_path_through_containers_and_global_names():
    global LOCK_FOR_TEST
    LOCK_FOR_TEST = threading.Lock()

    def make():
        return lambda: LOCK_FOR_TEST

    try:
        notes = notes_of({"a": [1, (2, make())]})
    finally:
        del LOCK_FOR_TEST
    assert notes == ["flightpickle: the part that could not be pickled is "
                     "obj['a'][1][1].__globals__['LOCK_FOR_TEST']"]


def test_recursion_error_is_still_a_pickling_error():
    deep = []
    for _ in range(50_000):
        deep = [deep]
    with pytest.raises(pickle.PicklingError):
        flightpickle.dumps(deep)


def test_pickling_error_of_a_refused_file_is_unchanged(tmp_path):
    path = tmp_path / "f.txt"
    path.write_text("x")
    with open(path, "w") as file, pytest.raises(pickle.PicklingError, match="not opened for reading"):
        flightpickle.dumps(file)


def test_subclass_with_another_constructor_gets_no_wrong_path():
    class Custom(flightpickle.Pickler):
        def __init__(self, file, extra):
            super().__init__(file)

    import io

    with pytest.raises(TypeError) as error:
        Custom(io.BytesIO(), "x").dump({"lock": threading.Lock()})
    assert not getattr(error.value, "__notes__", [])
