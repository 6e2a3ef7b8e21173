"""flightpickle turns itself on in a PySpark driver without code in the app, and costs others nothing.

These tests need no cluster: fresh interpreters show what the .pth hook does
at start-up, and fake contexts stand in for a SparkContext whose conf the
driver plugin filled in. The cluster tests (tests/spark/test_plugin_*.py) show
the whole path through spark-submit.
"""

from __future__ import annotations

import os
import subprocess
import sys
import warnings

import pytest

import flightpickle
from flightpickle import sealing
from flightpickle.spark import _autoenable, _driver, _plugin


def run_python(code: str, **env: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return result.stdout.strip()


def test_an_interpreter_that_never_imports_pyspark_does_not_load_flightpickle():
    out = run_python(
        "import sys; import json, email.mime.text; "
        "print('flightpickle' in sys.modules, any('PySpark' in repr(f) for f in sys.meta_path))"
    )
    assert out == "False True"


def test_importing_pyspark_wraps_the_context_and_removes_the_finder():
    out = run_python(
        "import sys; from pyspark import SparkContext; "
        "print(getattr(SparkContext.__init__, '_flightpickle_enables_on_start', False), "
        "any('PySpark' in repr(f) for f in sys.meta_path), 'flightpickle' in sys.modules)"
    )
    # flightpickle itself loads only for a context started with the plugin's switch on.
    assert out == "True False False"


def test_the_hook_can_be_turned_off():
    out = run_python(
        "import sys; from pyspark import SparkContext; "
        "print(getattr(SparkContext.__init__, '_flightpickle_enables_on_start', False), 'flightpickle' in sys.modules)",
        FLIGHTPICKLE_AUTOENABLE="0",
    )
    assert out == "False False"


def test_a_hook_that_fails_warns_and_leaves_pyspark_working(monkeypatch):
    import _flightpickle_autoenable as bootstrap

    class Broken:
        SparkContext = None  # install() fails on it

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        bootstrap._hook(Broken)
    assert any("flightpickle could not hook into PySpark" in str(w.message) for w in caught)


def test_a_context_whose_conf_cannot_be_read_is_left_alone():
    import _flightpickle_autoenable as bootstrap

    class Unreadable:
        def getConf(self):  # noqa: N802
            raise RuntimeError("the JVM is gone")

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert bootstrap._switched_on(Unreadable()) is False
    assert any("could not read spark.flightpickle.python.enabled" in str(w.message) for w in caught)


class FakeConf(dict):
    def get(self, key, default=None):
        return super().get(key, default)


class FakePlugin:
    def __init__(self, key):
        self.key = key

    def commandSigningKey(self):  # noqa: N802 - the Java name
        return self.key


class FakeContext:
    """What the hook reads of a SparkContext: its conf, py4j's view of the plugin, stop()."""

    def __init__(self, conf, key=None, jar=True):
        self.conf = FakeConf(conf)
        self.stopped = False
        plugin = FakePlugin(key)
        if jar:
            self._jvm = type("Jvm", (), {})()
            self._jvm.io = type("P", (), {"flightpickle": type("P", (), {"spark": type("P", (), {})()})()})()
            self._jvm.io.flightpickle.spark.FlightPicklePlugin = plugin
        else:
            self._jvm = None

    def getConf(self):  # noqa: N802
        return self.conf

    def stop(self):
        self.stopped = True


def test_the_switch_decides(monkeypatch):
    calls = []
    monkeypatch.setattr(_driver, "_enable", lambda context, *settings: calls.append(context))
    off = FakeContext({})
    assert not _autoenable.enable_if_switched_on(off)
    on = FakeContext({"spark.flightpickle.python.enabled": "true"})
    assert _autoenable.enable_if_switched_on(on)
    assert calls == [on]


def test_a_context_that_cannot_enable_is_stopped(monkeypatch):
    def fail(context, *settings):
        raise RuntimeError("no signing key")

    monkeypatch.setattr(_driver, "_enable", fail)
    context = FakeContext({"spark.flightpickle.python.enabled": "true"})
    with pytest.raises(RuntimeError, match="no signing key"):
        _autoenable.enable_if_switched_on(context)
    assert context.stopped


def test_a_by_value_module_not_importable_yet_is_a_warning(monkeypatch):
    monkeypatch.setattr(_driver, "_rdd_module", lambda: FakeRddModule)
    context = FakeContext({
        "spark.flightpickle.python.enabled": "true",
        "spark.flightpickle.pickleByValue": "fp_no_such_module_yet",
    })
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            assert _autoenable.enable_if_switched_on(context)
        assert any("'fp_no_such_module_yet', which the driver cannot import yet" in str(w.message) for w in caught)
        assert not context.stopped and _driver.is_enabled()
    finally:
        _driver.disable()
    # The explicit call keeps refusing it.
    with pytest.raises(ImportError, match="fp_no_such_module_yet"):
        _driver.enable(context)


class FakeRddModule:
    @staticmethod
    def _prepare_for_python_RDD(sc, command):  # noqa: N802 - PySpark's name
        raise AssertionError("not called in these tests")


def test_plugin_settings_carry_the_key_and_keep_checked_commands_inline():
    none = _plugin.plugin_settings(FakeContext({}))
    assert none == _plugin.PluginSettings(None, False)
    signed = _plugin.plugin_settings(
        FakeContext({"spark.flightpickle.requireSigned": "true"}, key=["spark-auth", "ab" * 32])
    )
    assert signed == _plugin.PluginSettings(("spark-auth", "ab" * 32), True)
    modules = _plugin.plugin_settings(FakeContext({"spark.flightpickle.allowedModules": "numpy"}))
    assert modules.inline_commands and modules.signing_key is None


def test_require_signed_without_the_plugins_key_is_an_error():
    with pytest.raises(RuntimeError, match="gave this driver no signing key"):
        _plugin.plugin_settings(FakeContext({"spark.flightpickle.requireSigned": "true"}, key=None))


def test_signed_commands_and_the_workers_environment():
    key = ("spark-auth", "cd" * 32)
    command = _driver._sealed_command((len, None), key)
    frame = pickle_argument_of_load_sealed(command)
    assert sealing.read_header(frame).key_id == "spark-auth"
    assert sealing.unseal(frame, key=key[1], key_id=key[0], require_signature=True) == (len, None)
    settings = _driver._Settings("native", True, False, signing_key=key)
    env = _driver._worker_environment({"PYTHONHASHSEED": "0"}, settings)
    assert env == {"PYTHONHASHSEED": "0", "FLIGHTPICKLE_KEY_ID": "spark-auth", "FLIGHTPICKLE_KEY": "cd" * 32}
    plain = _driver._Settings("native", True, False)
    assert _driver._worker_environment({"A": "1"}, plain) == {"A": "1"}


def pickle_argument_of_load_sealed(command: bytes) -> bytes:
    import pickle

    captured = []
    original = sealing.load_sealed
    try:
        sealing.load_sealed = lambda frame, cache=True: captured.append(frame)
        # The pickle names flightpickle.sealing.load_sealed; loading calls the stand-in.
        pickle.loads(command)
    finally:
        sealing.load_sealed = original
    assert captured, "the command did not call load_sealed"
    assert flightpickle.inspect_payload(captured[0]).sealed is not None
    return captured[0]
