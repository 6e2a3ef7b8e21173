"""PySpark's task context in the service: set from the task the Spark plugin
sends with a stream (its input schema's metadata) while the stream's function
runs, None for a stream without one, and never one stream's in the next (the
module's service has one worker, so every stream here meets the same one)."""

from __future__ import annotations

import json
import sys

import pyarrow as pa
import pytest

import flightpickle
import flightpickle.executor as executor
from flightpickle.executor.errors import ProtocolError, UdfError

pytestmark = pytest.mark.timeout(120)

TASK = {
    "stageId": 4,
    "partitionId": 3,
    "attemptNumber": 1,
    "taskAttemptId": 42,
    "cpus": 2,
    "cpuAmount": "1.5",
    "resources": {"gpu": {"name": "gpu", "addresses": ["0", "1"]}},
    "localProperties": {"team": "pricing", "spark.job.description": "nightly"},
}


@pytest.fixture(scope="module", autouse=True)
def by_value():
    """The service cannot import this module: its functions travel by value."""
    flightpickle.register_pickle_by_value(sys.modules[__name__])
    yield
    flightpickle.unregister_pickle_by_value(sys.modules[__name__])


def numbers(task: dict | None = None, raw: bytes | None = None) -> pa.RecordBatch:
    batch = pa.RecordBatch.from_arrays([pa.array([1, 2], pa.int64())], names=["x"])
    if task is not None:
        raw = json.dumps(task).encode()
    return batch if raw is None else batch.replace_schema_metadata({b"flightpickle.spark.task": raw})


def describe_task(x):
    from pyspark import TaskContext

    task = TaskContext.get()
    if task is None:
        return "none"
    gpus = task.resources().get("gpu")
    return "/".join(
        str(part)
        for part in (
            task.stageId(),
            task.partitionId(),
            task.attemptNumber(),
            task.taskAttemptId(),
            task.cpus(),
            task.cpuAmount(),
            task.getLocalProperty("team"),
            gpus.addresses if gpus else None,
        )
    )


def described(client, batch, kind="scalar_row"):
    if kind == "map_arrow":

        def describe_batches(batches):
            for batch in batches:
                yield pa.RecordBatch.from_arrays(
                    [pa.array([describe_task(x) for x in batch.column(0).to_pylist()])], names=["task"]
                )

        results = client.map(describe_batches, [batch], kind=kind, schema=pa.schema([("task", pa.string())]))
    else:
        results = client.map(describe_task, [batch], kind=kind, return_type=pa.string())
    return {value for result in results for value in result.column(0).to_pylist()}


@pytest.mark.parametrize("kind", ["scalar_row", "map_arrow"])
def test_a_stream_with_a_task_sees_it_and_the_next_stream_without_one_sees_none(service, kind):
    client = executor.connect(service.uri, timeout=30)
    assert described(client, numbers(TASK), kind) == {"4/3/1/42/2/1.5/pricing/['0', '1']"}
    assert described(client, numbers(), kind) == {"none"}


def test_a_later_task_has_only_its_own_fields_and_properties(service):
    client = executor.connect(service.uri, timeout=30)
    assert described(client, numbers(TASK)) == {"4/3/1/42/2/1.5/pricing/['0', '1']"}
    later = {**TASK, "partitionId": 0, "attemptNumber": 0, "localProperties": {}, "resources": {}}
    del later["cpuAmount"]  # a field a task may lack must not come from the one before
    assert described(client, numbers(later)) == {"4/0/0/42/2/None/None/None"}


def test_the_context_is_cleared_after_a_function_that_raises(service):
    def fails_in_task(x):
        raise RuntimeError("task failed on purpose")

    client = executor.connect(service.uri, timeout=30)
    with pytest.raises(UdfError, match="task failed on purpose"):
        list(client.map(fails_in_task, [numbers(TASK)], return_type=pa.string()))
    assert described(client, numbers()) == {"none"}


@pytest.mark.parametrize(
    "raw",
    [
        b"not json",
        json.dumps({**TASK, "partitionId": "3"}).encode(),
        json.dumps({"stageId": 1}).encode(),
        json.dumps({**TASK, "resources": {"gpu": {"name": "gpu", "addresses": "0"}}}).encode(),
    ],
)
def test_a_task_context_that_is_not_one_is_a_clear_error_and_the_worker_serves_on(service, raw):
    client = executor.connect(service.uri, timeout=30)
    with pytest.raises(ProtocolError, match="flightpickle.spark.task is not a task context"):
        list(client.map(describe_task, [numbers(raw=raw)], return_type=pa.string()))
    assert described(client, numbers()) == {"none"}
