"""PySpark's task context for the functions of a stream from Spark.

A UDF that the Spark plugin runs here is not in a PySpark worker, yet user
code calls ``pyspark.TaskContext.get()`` for the partition, the attempt or a
local property. The plugin sends the task's context in the input schema's
metadata (a JSON object, with the fields PySpark's own worker receives), and
the stream's function calls run with PySpark's ``TaskContext`` set from it.
A stream without it (a plain client) sees None, as outside any task.
"""

from __future__ import annotations

import contextlib
import json
import sys
from decimal import Decimal, InvalidOperation
from typing import Iterator

import pyarrow as pa

#: The input schema's metadata key for the task's context.
TASK_CONTEXT_KEY = b"flightpickle.spark.task"


def sent_task(schema: pa.Schema) -> dict | None:
    """The task context the stream carries, checked; None if it carries none."""
    sent = (schema.metadata or {}).get(TASK_CONTEXT_KEY)
    if sent is None:
        return None
    try:
        task = json.loads(sent)
        return {
            "stageId": _integer(task["stageId"]),
            "partitionId": _integer(task["partitionId"]),
            "attemptNumber": _integer(task["attemptNumber"]),
            "taskAttemptId": _integer(task["taskAttemptId"]),
            "cpus": _integer(task["cpus"]),
            "cpuAmount": Decimal(task["cpuAmount"]) if "cpuAmount" in task else None,
            "resources": _resources(task.get("resources", {})),
            "localProperties": _strings(task.get("localProperties", {})),
        }
    except (ValueError, KeyError, TypeError, InvalidOperation) as error:
        raise ValueError(f"the input schema's {TASK_CONTEXT_KEY.decode()} is not a task context: {error!r}") from None


def _integer(value) -> int:
    if type(value) is not int:
        raise TypeError(f"{value!r} is not an integer")
    return value


def _strings(mapping) -> dict[str, str]:
    if not isinstance(mapping, dict) or not all(isinstance(v, str) for v in mapping.values()):
        raise TypeError("local properties are not an object of strings")
    return mapping


def _resources(resources) -> dict:
    from pyspark.resource import ResourceInformation

    if not isinstance(resources, dict):
        raise TypeError("resources are not an object")
    named = {}
    for name, resource in resources.items():
        addresses = resource["addresses"]
        if not isinstance(resource["name"], str) or not isinstance(addresses, list):
            raise TypeError(f"resource {name!r} is not a name and a list of addresses")
        named[name] = ResourceInformation(resource["name"], [str(address) for address in addresses])
    return named


@contextlib.contextmanager
def running_as(task: dict | None) -> Iterator[None]:
    """PySpark's ``TaskContext.get()`` answers ``task`` inside, None after,
    whatever ends the block: the next stream on this worker must not see it."""
    if task is None:
        _clear()
        yield
        return
    from pyspark.taskcontext import TaskContext

    # PySpark's constructor returns the current context if there is one: a
    # fresh object needs none current, or an earlier task's fields would stay.
    _clear()
    TaskContext._setTaskContext(TaskContext(**task))
    try:
        yield
    finally:
        _clear()


def _clear() -> None:
    # Not imported yet, PySpark has no context set: a plain stream does not pay for importing it.
    module = sys.modules.get("pyspark.taskcontext")
    if module is not None:
        module.TaskContext._setTaskContext(None)
        module.BarrierTaskContext._setTaskContext(None)
