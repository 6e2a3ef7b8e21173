"""Objects that cannot be pickled raise ``pickle.PicklingError`` naming the path
to the unpicklable part, and stay instances of the error pickle raised, so
code that catches ``TypeError`` keeps working."""

import io
import pickle
import socket
import threading

import pytest

import flightpickle


class Session:
    def __init__(self):
        self._lock = threading.Lock()
        self.name = "session"


class Model:
    def __init__(self):
        self.session = Session()
        self.weights = [1, 2]


def pickling_error(obj, original=TypeError):
    with pytest.raises(pickle.PicklingError) as caught:
        flightpickle.dumps(obj)
    error = caught.value
    assert isinstance(error, original)
    assert isinstance(error.__cause__, original)
    assert str(error.__cause__) in str(error)
    return error


def test_path_through_globals_and_attributes():
    global MODEL_FOR_TEST
    MODEL_FOR_TEST = Model()

    def udf(x):
        return MODEL_FOR_TEST.weights[0] * x

    try:
        error = pickling_error(udf)
    finally:
        del MODEL_FOR_TEST
    assert str(error) == ("Could not pickle udf.__globals__['MODEL_FOR_TEST'].session._lock: "
                          "cannot pickle '_thread.lock' object")


def test_path_through_closures():
    model = Model()

    def udf(x):
        return model.weights[0] * x

    error = pickling_error(udf)
    assert "udf.__closure__[0].cell_contents.session._lock:" in str(error)


def test_path_through_containers_and_global_names():
    global LOCK_FOR_TEST
    LOCK_FOR_TEST = threading.Lock()

    def make():
        return lambda: LOCK_FOR_TEST

    try:
        error = pickling_error({"a": [1, (2, make())]})
    finally:
        del LOCK_FOR_TEST
    assert "obj['a'][1][1].__globals__['LOCK_FOR_TEST']:" in str(error)


def test_socket_inside_a_class_attribute():
    sock = socket.socket()
    try:
        holder = type("Holder", (), {"connection": sock})
        error = pickling_error(holder)
    finally:
        sock.close()
    assert str(error) == "Could not pickle Holder.connection: cannot pickle 'socket' object"


def test_generator_deep_in_a_list():
    generator = (x for x in range(3))
    error = pickling_error([1, {"rows": generator}])
    assert str(error) == "Could not pickle obj[1]['rows']: cannot pickle 'generator' object"


def test_the_object_itself():
    error = pickling_error(threading.Lock())
    assert str(error) == "Could not pickle obj: cannot pickle '_thread.lock' object"


def test_errors_of_other_kinds_from_reduce_keep_their_type():
    class Refuses:
        def __reduce__(self):
            raise RuntimeError("not today")

    error = pickling_error([Refuses()], RuntimeError)
    assert str(error) == "Could not pickle obj[0]: not today"


def test_error_classes_that_cannot_carry_the_message_give_plain_pickling_errors():
    class Odd:
        def __reduce__(self):
            raise UnicodeEncodeError("ascii", "é", 0, 1, "no")

    with pytest.raises(pickle.PicklingError, match=r"Could not pickle obj\[0\]: 'ascii' codec") as caught:
        flightpickle.dumps([Odd()])
    assert type(caught.value) is pickle.PicklingError
    assert isinstance(caught.value.__cause__, UnicodeEncodeError)


def test_one_error_class_per_original_class():
    first = pickling_error(threading.Lock())
    second = pickling_error([threading.Lock()])
    assert type(first) is type(second)
    assert type(first).__qualname__ == "PicklingError(TypeError)"


def test_the_error_itself_pickles_and_keeps_both_types():
    error = pickling_error([threading.Lock()])
    loaded = pickle.loads(pickle.dumps(error))
    assert isinstance(loaded, pickle.PicklingError) and isinstance(loaded, TypeError)
    assert str(loaded) == str(error)


def test_pickling_error_of_a_refused_file_names_the_path(tmp_path):
    path = tmp_path / "f.txt"
    path.write_text("x")
    with open(path, "w") as file, pytest.raises(pickle.PicklingError, match="not opened for reading") as caught:
        flightpickle.dumps({"log": file})
    assert "obj['log']" in str(caught.value)


def test_failures_that_are_not_the_objects_stay_unchanged():
    class FullDisk(io.RawIOBase):
        def writable(self):
            return True

        def write(self, data):
            raise OSError(28, "No space left on device")

    with pytest.raises(OSError) as caught:
        flightpickle.dump([1, 2], FullDisk())
    assert not isinstance(caught.value, pickle.PicklingError)


def test_subclass_with_another_constructor_still_gets_pickle_s_error():
    class Custom(flightpickle.Pickler):
        def __init__(self, file, extra):
            super().__init__(file)

    with pytest.raises(TypeError, match="cannot pickle '_thread.lock' object"):
        Custom(io.BytesIO(), "x").dump({"lock": threading.Lock()})


def test_recursion_error_is_a_pickling_error():
    deep = []
    for _ in range(50_000):
        deep = [deep]
    with pytest.raises(pickle.PicklingError, match="excessively deep recursion"):
        flightpickle.dumps(deep)


DEEP_SCRIPT = """
import pickle, flightpickle

def closures(n):
    f = lambda: 0
    for _ in range(n):
        f = (lambda g: (lambda: g))(f)
    return f

def class_attributes(n):
    c = type("C0", (), {})
    for i in range(n):
        c = type(f"C{i + 1}", (), {"inner": c})
    return c

def class_bases(n):
    c = type("B0", (), {})
    for i in range(n):
        c = type(f"B{i + 1}", (c,), {})
    return c

for make, n in ((closures, 20_000), (class_attributes, 20_000), (class_bases, 1_500)):
    try:
        flightpickle.dumps(make(n))
    except pickle.PicklingError as e:
        assert "excessively deep recursion" in str(e), (make.__name__, e)
        print(make.__name__, "refused")
"""


def test_deeply_nested_functions_and_classes_are_refused_without_a_crash(run_python):
    # In a fresh interpreter: were the Rust reducers to overflow the stack,
    # the test would see a signal, not take pytest down with it.
    output = run_python(DEEP_SCRIPT).decode().split()
    assert output == ["closures", "refused", "class_attributes", "refused", "class_bases", "refused"]
