"""Each target's pickles of the matrix load, and behave as the originals,
where only that target's reconstructors exist: a venv with only stock
cloudpickle 3.1.2, a venv with only pyspark 4.3.0, and (native) flightpickle."""

import pickle
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
MATRIX = ["function", "lambda", "closure", "recursive", "string_sets", "class", "instance",
          "nested_slots_class", "enum", "enum_member", "dataclass", "typevar", "generic_function",
          "byvalue_module_function", "byvalue_module_class", "byvalue_module", "dict_views",
          "logger", "root_logger"]
TARGETS = ["native", "cloudpickle", "pyspark"]


def write_matrix(target, directory):
    output = directory / f"{target}.matrix"
    subprocess.run([sys.executable, str(HERE / "matrix_script.py"), target, str(output)],
                   cwd=directory, check=True, timeout=120)
    return output


@pytest.fixture(scope="module")
def loaded(stock_pythons, tmp_path_factory):
    """{target: (written table, loader's results)}."""
    directory = tmp_path_factory.mktemp("matrix")
    pythons = {"native": Path(sys.executable), **stock_pythons}
    out = {}
    for target in TARGETS:
        matrix = write_matrix(target, directory)
        proc = subprocess.run([str(pythons[target]), "-I", str(HERE / "matrix_loader.py"),
                               str(matrix)], cwd=directory, capture_output=True, timeout=120)
        assert proc.returncode == 0, proc.stderr.decode()
        with open(matrix, "rb") as file:
            out[target] = (pickle.load(file), pickle.loads(proc.stdout))
    return out


@pytest.mark.parametrize("name", MATRIX)
@pytest.mark.parametrize("target", TARGETS)
def test_loads_and_behaves_like_the_original(loaded, target, name):
    table, results = loaded[target]
    assert sorted(table) == sorted(MATRIX)
    _payload, expected, tracked = table[name]
    status, result, same_on_reload = results[name]
    assert status == "ok", result
    assert result == expected
    if tracked:
        assert same_on_reload, "a second load must give back the same object"


def test_stock_venvs_cannot_import_flightpickle(stock_pythons):
    for python in stock_pythons.values():
        proc = subprocess.run([str(python), "-I", "-c", "import flightpickle"], capture_output=True)
        assert proc.returncode != 0
