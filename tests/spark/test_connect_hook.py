"""When the Connect client is hooked, and what its hooked path pickles; no cluster needed.

``PythonUDF.to_plan`` needs a session only to parse a type string, so with a
DataType it runs here without a server, the very code a Connect client runs.
"""

from __future__ import annotations

import pickle
import subprocess
import sys
import threading

import pytest

import flightpickle
import flightpickle.spark
from support import imported_globals, sealed_frame

# A fresh interpreter: whether enable() loads the Connect client depends on what is loaded already.
ENABLE_IN_A_CLASSIC_DRIVER = """
import sys
import flightpickle.spark
flightpickle.spark.enable()
print("pyspark.sql.connect.expressions" in sys.modules)
"""


@pytest.fixture
def connect_hooked(monkeypatch):
    """The hook installed the way a client on its way to Connect gets it: SPARK_REMOTE set."""
    monkeypatch.setenv("SPARK_REMOTE", "sc://localhost")
    flightpickle.spark.enable()
    monkeypatch.delenv("SPARK_REMOTE")
    yield
    flightpickle.spark.disable()


def python_udf_command(func) -> bytes:
    from pyspark.sql.connect.expressions import PythonUDF
    from pyspark.sql.types import LongType
    from pyspark.util import PythonEvalType

    udf = PythonUDF(LongType(), PythonEvalType.SQL_BATCHED_UDF, func, "%d.%d" % sys.version_info[:2])
    return udf.to_plan(None).command


def test_a_classic_driver_does_not_load_the_connect_client():
    found = subprocess.run(
        [sys.executable, "-c", ENABLE_IN_A_CLASSIC_DRIVER], capture_output=True, text=True, timeout=120
    )
    assert found.returncode == 0, found.stderr[-3000:]
    assert found.stdout.strip() == "False"


def test_spark_remote_hooks_the_connect_client(connect_hooked):
    offset = 4
    command = python_udf_command(lambda n: n + offset)
    assert imported_globals(command) == {"flightpickle.sealing.load_sealed"}
    function, _ = pickle.loads(command)
    assert function(1) == 5
    assert flightpickle.inspect_payload(sealed_frame(command)).sealed.python[1:] == tuple(sys.version_info[:2])


def test_unpicklable_udf_fails_in_the_client_with_its_path(connect_hooked):
    lock = threading.Lock()
    with pytest.raises(pickle.PicklingError) as failure:
        python_udf_command(lambda n: lock.locked())
    assert str(failure.value).startswith("Could not pickle obj[0].__closure__[0].cell_contents: "), failure.value


def test_disable_gives_the_client_back_to_cloudpickle(connect_hooked):
    flightpickle.spark.disable()
    names = imported_globals(python_udf_command(lambda n: n))
    assert "pyspark.cloudpickle.cloudpickle._make_function" in names
    assert not any(name.startswith("flightpickle") for name in names)
