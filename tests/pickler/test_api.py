"""The public API is cloudpickle 3.1.2's: names, signatures, errors."""

import collections
import copyreg
import inspect
import io
import pickle
import types

import cloudpickle
import pytest

import flightpickle


def test_public_names_match_cloudpickle():
    for name in cloudpickle.__all__:
        assert hasattr(flightpickle, name), name
    assert set(cloudpickle.__all__) <= set(flightpickle.__all__)
    assert flightpickle.list_registry_pickle_by_value
    assert flightpickle.__version__.count(".") == 2


@pytest.mark.parametrize("name", ["register_pickle_by_value",
                                  "unregister_pickle_by_value", "list_registry_pickle_by_value"])
def test_signatures_match_cloudpickle(name):
    ours, theirs = getattr(flightpickle, name), getattr(cloudpickle, name)
    assert inspect.signature(ours) == inspect.signature(theirs)


def _with_target(signature):
    """cloudpickle's signature plus the one extra: keyword-only ``target=None``."""
    extra = inspect.Parameter("target", inspect.Parameter.KEYWORD_ONLY, default=None)
    return signature.replace(parameters=[*signature.parameters.values(), extra])


@pytest.mark.parametrize("name", ["dumps", "dump", "Pickler"])
def test_pickling_signatures_are_cloudpickles_plus_keyword_only_target(name):
    ours, theirs = getattr(flightpickle, name), getattr(cloudpickle, name)
    assert inspect.signature(ours) == _with_target(inspect.signature(theirs))


@pytest.mark.parametrize("name", ["load", "loads"])
def test_load_and_loads_take_what_pickle_s_take(name):
    assert inspect.signature(getattr(flightpickle, name)) == inspect.signature(getattr(pickle, name))


def test_loads_passes_its_options_through():
    data = flightpickle.dumps(bytearray(b"oob"), protocol=5, buffer_callback=lambda b: False)
    assert flightpickle.loads(data, buffers=[]) == bytearray(b"oob")
    old = pickle.dumps("é", protocol=2, fix_imports=False)
    assert flightpickle.loads(old, encoding="latin-1", errors="strict", fix_imports=False) == "é"
    file = io.BytesIO(flightpickle.dumps([1]))
    assert flightpickle.load(file=file, buffers=None) == [1]


def test_load_and_loads_refuse_what_pickle_s_refuse():
    for call in (lambda: flightpickle.loads(b"N.", unknown=1), lambda: flightpickle.loads(data=b"N."),
                 flightpickle.loads, lambda: flightpickle.load(io.BytesIO(b"N."), b"extra")):
        with pytest.raises(TypeError):
            call()
    with pytest.raises(pickle.UnpicklingError):
        flightpickle.loads(b"not a pickle")


@pytest.mark.parametrize("name", ["load", "loads"])
def test_load_and_loads_pickle_by_reference(name):
    function = getattr(flightpickle, name)
    assert pickle.loads(pickle.dumps(function)) is function


def test_dump_to_no_file_is_refused_as_pickler_refuses_it():
    with pytest.raises(TypeError, match="write"):
        flightpickle.dump([1], None)


def test_pickler_is_a_c_pickler_and_cloudpickler_the_same_class():
    assert flightpickle.CloudPickler is flightpickle.Pickler
    assert issubclass(flightpickle.Pickler, pickle.Pickler)
    assert flightpickle.DEFAULT_PROTOCOL == pickle.HIGHEST_PROTOCOL == cloudpickle.DEFAULT_PROTOCOL


@pytest.mark.parametrize("proto", [2, 3, 4, 5])
def test_protocols(proto):
    data = flightpickle.dumps(lambda x: x + 1, protocol=proto)
    assert data[:2] == bytes([0x80, proto])
    assert pickle.loads(data)(1) == 2


def test_default_protocol_and_proto_attribute():
    assert flightpickle.dumps(1)[:2] == bytes([0x80, flightpickle.DEFAULT_PROTOCOL])
    assert flightpickle.Pickler(io.BytesIO()).proto == flightpickle.DEFAULT_PROTOCOL
    assert flightpickle.Pickler(io.BytesIO(), protocol=3).proto == 3


def test_dump_writes_to_the_file():
    file = io.BytesIO()
    flightpickle.dump(lambda: 7, file, protocol=4)
    file.seek(0)
    assert flightpickle.load(file)() == 7


def test_plain_data_is_what_pickle_writes(protocol):
    data = {"a": [1, 2.5, "x", b"y", None, True, (1, 2)], "b": {3, 4}, "c": collections.OrderedDict(z=1)}
    assert flightpickle.dumps(data, protocol=protocol) == pickle.dumps(data, protocol=protocol)


def test_out_of_band_buffers():
    np = pytest.importorskip("numpy")
    array = np.arange(1000, dtype="float64")
    buffers = []
    data = flightpickle.dumps(array, protocol=5, buffer_callback=buffers.append)
    assert len(buffers) == 1
    assert len(data) < array.nbytes
    assert (pickle.loads(data, buffers=buffers) == array).all()


def test_dispatch_table_is_a_live_view_over_copyreg():
    class Late:
        pass

    def reduce_late(obj):
        return int, (42,)

    table = flightpickle.Pickler.dispatch_table
    assert Late not in table
    copyreg.dispatch_table[Late] = reduce_late
    try:
        assert table[Late] is reduce_late
        assert pickle.loads(flightpickle.dumps(Late())) == 42
    finally:
        del copyreg.dispatch_table[Late]
    assert Late not in table
    with pytest.raises(KeyError):
        table[Late]


def test_dispatch_table_behaves_like_a_chainmap():
    table = flightpickle.Pickler.dispatch_table
    assert flightpickle.Pickler.dispatch is table
    assert table.maps[1] is copyreg.dispatch_table
    assert property in table and table.get(property) is not None
    assert table.get(object, "missing") == "missing"
    assert set(table) == set(collections.ChainMap(*table.maps))
    assert len(table) == len(collections.ChainMap(*table.maps))
    child = table.new_child({int: repr})
    assert child[int] is repr and child.maps[1:] == table.maps
    assert child.parents.maps == table.maps


def test_subclass_dispatch_table_entries_are_honoured():
    class Marker:
        pass

    class MyPickler(flightpickle.Pickler):
        dispatch_table = collections.ChainMap(
            {Marker: lambda obj: (str, ("marker",))}, flightpickle.Pickler.dispatch_table
        )

    file = io.BytesIO()
    MyPickler(file).dump([Marker(), lambda: 3])
    marker, func = pickle.loads(file.getvalue())
    assert marker == "marker" and func() == 3


def test_instance_dispatch_table_set_before_init_is_honoured():
    class Marker:
        pass

    class MyPickler(flightpickle.Pickler):
        def __init__(self, file):
            # The C pickler reads dispatch_table once, in __init__.
            self.dispatch_table = flightpickle.Pickler.dispatch_table.new_child(
                {Marker: lambda obj: (str, ("seen",))}
            )
            super().__init__(file)

    file = io.BytesIO()
    MyPickler(file).dump(Marker())
    assert pickle.loads(file.getvalue()) == "seen"


def test_subclass_reducer_override_wins_and_can_defer_to_super():
    seen = []

    class Secret:
        pass

    class MyPickler(flightpickle.Pickler):
        def reducer_override(self, obj):
            seen.append(type(obj))
            if isinstance(obj, Secret):
                return str, ("redacted",)
            return super().reducer_override(obj)

    file = io.BytesIO()
    MyPickler(file).dump([Secret(), lambda x: x * 3])
    secret, func = pickle.loads(file.getvalue())
    assert secret == "redacted" and func(2) == 6
    assert Secret in seen and types.FunctionType in seen


def test_reducer_override_through_the_class():
    pickler = flightpickle.Pickler(io.BytesIO())
    assert flightpickle.Pickler.reducer_override(pickler, 1.5j) is NotImplemented
    assert pickler.reducer_override(object()) is NotImplemented
    reduced = pickler.reducer_override(lambda: 1)
    assert isinstance(reduced, tuple) and len(reduced) == 6


def test_reducer_override_leaves_importable_objects_to_pickle():
    pickler = flightpickle.Pickler(io.BytesIO())
    for obj in (len, pickle.dumps, collections.OrderedDict, int, "text", 3):
        assert pickler.reducer_override(obj) is NotImplemented


def test_recursion_error_becomes_pickling_error():
    deep = []
    for _ in range(100_000):
        deep = [deep]
    with pytest.raises(pickle.PicklingError, match="excessively deep recursion"):
        flightpickle.dumps(deep)


def test_unpicklable_object_raises_what_pickle_raised_and_a_pickling_error():
    import threading

    lock = threading.Lock()
    for obj in (lambda: lock, {"lock": lock}):
        with pytest.raises(TypeError, match="cannot pickle '_thread.lock' object") as caught:
            flightpickle.dumps(obj)
        assert isinstance(caught.value, pickle.PicklingError)


def _messages(module, call):
    try:
        call(module)
    except ValueError as e:
        return str(e)
    return None


@pytest.mark.parametrize("bad", [1, "os", None])
def test_register_errors_match_cloudpickle_word_for_word(bad):
    for name in ("register_pickle_by_value", "unregister_pickle_by_value"):
        ours = _messages(bad, getattr(flightpickle, name))
        theirs = _messages(bad, getattr(cloudpickle, name))
        assert ours == theirs and ours.startswith("Input should be a module object")


def test_register_of_module_missing_from_sys_modules_matches_cloudpickle():
    module = types.ModuleType("not_in_sys_modules")
    ours = _messages(module, flightpickle.register_pickle_by_value)
    theirs = _messages(module, cloudpickle.register_pickle_by_value)
    assert ours == theirs and "was not imported correctly" in ours


def test_unregister_unknown_module_matches_cloudpickle():
    ours = _messages(collections, flightpickle.unregister_pickle_by_value)
    theirs = _messages(collections, cloudpickle.unregister_pickle_by_value)
    assert ours == theirs == f"{collections} is not registered for pickle by value"


def test_registry_round_trip():
    assert "collections" not in flightpickle.list_registry_pickle_by_value()
    flightpickle.register_pickle_by_value(collections)
    try:
        listed = flightpickle.list_registry_pickle_by_value()
        assert listed == {"collections"}
        listed.add("other")
        assert flightpickle.list_registry_pickle_by_value() == {"collections"}
    finally:
        flightpickle.unregister_pickle_by_value(collections)
    assert flightpickle.list_registry_pickle_by_value() == set()


def test_subclass_override_without_super_still_gets_our_table():
    class OnlyFunctions(flightpickle.Pickler):
        def reducer_override(self, obj):
            return NotImplemented

    file = io.BytesIO()
    OnlyFunctions(file).dump(property(abs, doc="kept"))
    assert pickle.loads(file.getvalue()).__doc__ == "kept"


def test_subclass_override_calling_super_sometimes_keeps_our_table():
    class Sometimes(flightpickle.Pickler):
        def reducer_override(self, obj):
            # Classes too: the code object's class needs it, as in cloudpickle.
            if isinstance(obj, (types.FunctionType, type)):
                return super().reducer_override(obj)
            return NotImplemented

    file = io.BytesIO()
    Sometimes(file).dump([lambda: 1, property(abs, doc="kept"), types.CellType(5)])
    func, prop, cell = pickle.loads(file.getvalue())
    assert func() == 1 and prop.__doc__ == "kept" and cell.cell_contents == 5


def test_entries_added_to_the_class_table_are_honoured():
    class Added:
        pass

    flightpickle.Pickler.dispatch_table[Added] = lambda obj: (str, ("added",))
    try:
        assert pickle.loads(flightpickle.dumps(Added())) == "added"
    finally:
        del flightpickle.Pickler.dispatch_table[Added]
    assert Added not in flightpickle.Pickler.dispatch_table
    with pytest.raises(KeyError):
        del flightpickle.Pickler.dispatch_table[Added]


def test_repeated_dumps_on_one_pickler_share_state():
    file = io.BytesIO()
    pickler = flightpickle.Pickler(file)

    def a():
        return SHARED_FOR_TEST

    def b():
        return SHARED_FOR_TEST

    pickler.dump(a)
    pickler.dump(b)
    file.seek(0)
    unpickler = pickle.Unpickler(file)
    a2, b2 = unpickler.load(), unpickler.load()
    assert a2.__globals__ is b2.__globals__


SHARED_FOR_TEST = 1


def _plain_values():
    import datetime
    import decimal
    import fractions
    import uuid

    looped = [1]
    looped.append(looped)
    return [2**100, -1.5e300, 3 + 4j, bytearray(b"ba"), range(1, 9, 2), slice(1, None), frozenset({1}),
            datetime.datetime(2024, 5, 6, 7, 8, 9), decimal.Decimal("1.10"), fractions.Fraction(3, 7),
            uuid.UUID(int=5), collections.Counter("aab"), collections.deque([1, 2], maxlen=3),
            collections.defaultdict(list, a=[1]), looped, ("shared",) * 3, len, pickle.dumps, io.BytesIO,
            type(None), Ellipsis, NotImplemented, {"nested": {"deep": [{"x": (1, {2})}]}}]


@pytest.mark.parametrize("proto", [2, 3, 4, 5])
def test_what_pickle_handles_is_written_as_pickle_writes_it(proto):
    for value in _plain_values():
        assert flightpickle.dumps(value, protocol=proto) == pickle.dumps(value, protocol=proto), value


# dumps and dump read their own arguments (dumping.rs, arguments.rs); the
# messages are those their earlier PyO3 signatures gave, word for word.
@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: flightpickle.dumps(), "dumps() missing 1 required positional argument: 'obj'"),
        (lambda: flightpickle.dumps(protocol=2), "dumps() missing 1 required positional argument: 'obj'"),
        (lambda: flightpickle.dumps(1, bogus=2), "dumps() got an unexpected keyword argument 'bogus'"),
        (lambda: flightpickle.dumps(1, obj=2), "dumps() got multiple values for argument 'obj'"),
        (lambda: flightpickle.dumps(1, 2, protocol=2), "dumps() got multiple values for argument 'protocol'"),
        (
            lambda: flightpickle.dumps(1, 2, None, "native"),
            "dumps() takes from 1 to 3 positional arguments but 4 were given",
        ),
        (lambda: flightpickle.dump(), "dump() missing 2 required positional arguments: 'obj' and 'file'"),
        (lambda: flightpickle.dump(1), "dump() missing 1 required positional argument: 'file'"),
        (lambda: flightpickle.dump(file=io.BytesIO()), "dump() missing 1 required positional argument: 'obj'"),
        (lambda: flightpickle.dump(1, io.BytesIO(), file=3), "dump() got multiple values for argument 'file'"),
        (lambda: flightpickle.dump(1, io.BytesIO(), bogus=3), "dump() got an unexpected keyword argument 'bogus'"),
        (
            lambda: flightpickle.dump(1, io.BytesIO(), 2, None, 5),
            "dump() takes from 2 to 4 positional arguments but 5 were given",
        ),
    ],
)
def test_argument_errors_of_dumps_and_dump(call, message):
    with pytest.raises(TypeError) as raised:
        call()
    assert str(raised.value) == message


def test_dumps_and_dump_take_every_argument_by_keyword():
    expected = pickle.dumps([1], protocol=2)
    assert flightpickle.dumps(obj=[1], protocol=2, buffer_callback=None, target=None) == expected
    file = io.BytesIO()
    assert flightpickle.dump(target="native", protocol=2, file=file, obj=[1]) is None
    assert file.getvalue() == expected
    # None stands for the default, as before.
    assert flightpickle.dumps([1], None, None, target=None) == flightpickle.dumps([1])


def test_dumps_and_dump_describe_themselves():
    for function in (flightpickle.dumps, flightpickle.dump):
        assert function.__module__ == "flightpickle._native"
        assert function.__doc__.startswith("Pickle ``obj``")
        assert "target=None" in pydoc_text(function)
    assert pickle.loads(pickle.dumps(flightpickle.dumps)) is flightpickle.dumps


def pydoc_text(function):
    import pydoc

    return pydoc.render_doc(function, renderer=pydoc.plaintext)
