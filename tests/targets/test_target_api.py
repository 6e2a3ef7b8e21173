"""Choosing a wire target: per call, per pickler, per process, from the
environment; and the clear refusals."""

import io
import os
import pickle
import subprocess
import sys
import typing

import pytest

import flightpickle
from support import imported_globals

TARGET_MODULES = {
    "native": "flightpickle",
    "cloudpickle": "cloudpickle.cloudpickle",
    "pyspark": "pyspark.cloudpickle.cloudpickle",
}


def reconstructor_modules(payload):
    """The modules of the reconstructors a pickle names."""
    return {name.rsplit(".", 1)[0] for name in imported_globals(payload)
            if "pickle" in name.rsplit(".", 1)[0]}


@pytest.fixture(autouse=True)
def restore_default_target():
    yield
    flightpickle.set_default_target(None)


def local_objects():
    offset = 3

    class Local:
        def method(self):
            return offset
    return [lambda x: x + offset, Local, {"a": 1}.keys(), typing.TypeVar("T")]


@pytest.mark.parametrize("target", sorted(TARGET_MODULES))
def test_dumps_names_only_the_targets_reconstructors(target):
    payload = flightpickle.dumps(local_objects(), target=target)
    assert reconstructor_modules(payload) == {TARGET_MODULES[target]}
    function, cls, keys, typevar = pickle.loads(payload)
    assert function(1) == 4 and cls().method() == 3 and list(keys) == ["a"]
    assert typevar.__name__ == "T"


@pytest.mark.parametrize("target", sorted(TARGET_MODULES))
def test_dump_and_pickler_take_the_target_too(target):
    file = io.BytesIO()
    flightpickle.dump(local_objects(), file, target=target)
    assert reconstructor_modules(file.getvalue()) == {TARGET_MODULES[target]}
    pickler = flightpickle.Pickler(io.BytesIO(), target=target)
    assert pickler.target == target


def test_default_is_native_and_settable_for_the_process():
    assert flightpickle.get_default_target() == "native"
    flightpickle.set_default_target("pyspark")
    assert flightpickle.get_default_target() == "pyspark"
    assert reconstructor_modules(flightpickle.dumps(local_objects())) == {TARGET_MODULES["pyspark"]}
    # An explicit target still wins over the default.
    assert reconstructor_modules(flightpickle.dumps(local_objects(), target="native")) == {
        TARGET_MODULES["native"]}
    flightpickle.set_default_target(None)
    assert flightpickle.get_default_target() == "native"


def test_a_pickler_keeps_the_target_it_was_made_with():
    pickler = flightpickle.Pickler(io.BytesIO(), target=None)
    flightpickle.set_default_target("cloudpickle")
    assert pickler.target == "native"


@pytest.mark.parametrize("call", [
    lambda: flightpickle.dumps(1, target="spark"),
    lambda: flightpickle.Pickler(io.BytesIO(), target="Native"),
    lambda: flightpickle.set_default_target("cloudpickle3"),
])
def test_unknown_targets_are_a_value_error(call):
    with pytest.raises(ValueError, match="unknown flightpickle target"):
        call()


def test_target_is_keyword_only():
    with pytest.raises(TypeError):
        flightpickle.dumps(1, 5, None, "native")


def run_with_env(value, code):
    env = {**os.environ, "FLIGHTPICKLE_TARGET": value}
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, timeout=60)


def test_environment_variable_sets_the_default_once():
    code = ("import os, flightpickle\n"
            "print(flightpickle.get_default_target())\n"
            "os.environ['FLIGHTPICKLE_TARGET'] = 'native'\n"
            "print(flightpickle.get_default_target())\n")
    proc = run_with_env("cloudpickle", code)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["cloudpickle", "cloudpickle"]


def test_bad_environment_variable_is_a_clear_value_error():
    proc = run_with_env("bogus", "import flightpickle\nflightpickle.dumps(lambda: 1)\n")
    assert proc.returncode != 0
    assert "ValueError: FLIGHTPICKLE_TARGET=\"bogus\" is not a flightpickle target" in proc.stderr


def flightpickle_only_constructs():
    P = typing.ParamSpec("P")
    Ts = typing.TypeVarTuple("Ts")
    UserId = typing.NewType("UserId", int)
    return {"ParamSpec 'P'": P, "TypeVarTuple 'Ts'": Ts, "NewType 'UserId'": UserId}


@pytest.mark.parametrize("target", ["cloudpickle", "pyspark"])
@pytest.mark.parametrize("construct", sorted(flightpickle_only_constructs()))
def test_constructs_without_a_stock_reconstructor_are_refused(target, construct):
    obj = flightpickle_only_constructs()[construct]
    with pytest.raises(pickle.PicklingError) as info:
        flightpickle.dumps([obj], target=target)
    message = str(info.value)
    assert construct in message and f'target "{target}"' in message
    # The native target carries them.
    assert pickle.loads(flightpickle.dumps([obj], target="native"))[0] is not None


def test_subclass_reducer_override_and_table_follow_the_target():
    class Custom(flightpickle.Pickler):
        def reducer_override(self, obj):
            return super().reducer_override(obj)

    file = io.BytesIO()
    Custom(file, target="cloudpickle").dump(local_objects())
    assert reconstructor_modules(file.getvalue()) == {TARGET_MODULES["cloudpickle"]}


def test_loads_reads_what_stock_cloudpickle_wrote():
    code = (
        "import cloudpickle, enum, sys\n"
        "K = 3\n"
        "class Box:\n"
        "    def get(self): return K\n"
        "class Mode(enum.Enum):\n"
        "    ON = 1\n"
        "sys.stdout.buffer.write(cloudpickle.dumps((lambda x: x * K, Box, Mode)))\n")
    payload = subprocess.run([sys.executable, "-c", code], capture_output=True, check=True,
                             timeout=60).stdout
    function, box, mode = flightpickle.loads(payload)
    assert function(2) == 6 and box().get() == 3 and mode.ON.value == 1
