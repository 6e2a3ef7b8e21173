"""Limits and deadlines of the executor service, shared by its processes."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

DEFAULT_BODY_LIMIT = 256 << 20
#: What a gRPC message of the Flight front may carry beyond a body: its IPC
#: header and app_metadata (the front's MESSAGE_OVERHEAD, flight_front.rs).
FLIGHT_MESSAGE_OVERHEAD = 2 << 20


@dataclass(frozen=True)
class Settings:
    #: Largest frame body accepted (a batch or a sealed function), in bytes.
    body_limit: int = DEFAULT_BODY_LIMIT
    #: Seconds a stream may wait for the caller's next message.
    idle_timeout: float = 60.0
    #: Seconds a stream may last in all; 0 for no limit.
    total_timeout: float = 0.0
    #: Seconds a worker is given to finish its stream on shutdown.
    shutdown_grace: float = 30.0
    #: Seconds a stream's function may run on after its caller hung up,
    #: before the worker exits and a fresh one takes its place (Spark's
    #: ``spark.python.task.killTimeout`` does the same for its workers).
    cancel_grace: float = 2.0

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> Settings:
        return cls(**json.loads(text))
