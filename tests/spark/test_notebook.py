"""The example notebook runs for real: a Jupyter kernel, a local cluster, notebook UDFs."""

import os
import sys

import nbformat
import pytest
from nbclient import NotebookClient

from support import REPO_ROOT, plugin_jar

pytestmark = pytest.mark.spark

NOTEBOOK = REPO_ROOT / "examples" / "notebook_udfs.ipynb"


def test_example_notebook_runs_its_udfs_on_the_cluster(monkeypatch):
    monkeypatch.setenv("FLIGHTPICKLE_JAR", str(plugin_jar()))
    monkeypatch.setenv("SPARK_LOCAL_IP", os.environ.get("SPARK_LOCAL_IP", "127.0.0.1"))
    # The kernel is this venv's Python, like the Spark workers the notebook starts.
    monkeypatch.setenv("PATH", f"{os.path.dirname(sys.executable)}{os.pathsep}{os.environ['PATH']}")
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = NotebookClient(
        notebook,
        kernel_name="python3",
        timeout=300,
        resources={"metadata": {"path": str(NOTEBOOK.parent)}},
    )
    client.execute()
    outputs = "".join(
        output.get("text", "") for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs
    )
    assert "all 100 rows match; 4 UDF commands pickled by flightpickle" in outputs, outputs
    assert "closure          tax: float" in outputs, outputs
    # pandas UDFs of three kinds, mapInPandas, mapInArrow, applyInPandas, its
    # cogrouped form, a registered UDF using a by-value local module, a UDTF,
    # three RDD functions, and a UDF whose 10 MB command is broadcast.
    assert "13 kinds match; 1 broadcast command(s)" in outputs, outputs
