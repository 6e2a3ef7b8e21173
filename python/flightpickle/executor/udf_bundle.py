"""UDF bundles: several PySpark UDF commands evaluated on one stream, as one
operator of Spark's evaluates them in one Python call.

Spark's ``ArrowEvalPythonExec`` may hold several UDFs (``select(f(a),
g(b))``), chained UDFs (``f(g(x))``: the inner one's result is passed to the
outer one as it is, never converted) and keyword arguments. The Spark plugin
sends such an operator's commands as one bundle in place of a sealed
function: the stream's input columns are the arguments of all its UDFs, its
output one column per UDF. The wire layout is in ``PROTOCOL.md``
("UDF bundles").

Each command in a bundle is a sealed envelope, checked and loaded like a
single function; the bundle's digest is ``bundle-`` and the SHA-256 of its
bytes, which the service checks, so a cached bundle is the one sent.
"""

from __future__ import annotations

import hashlib
import json
import struct
from dataclasses import dataclass
from functools import cached_property
from itertools import repeat
from typing import Callable

from .spark_commands import SparkCommand

MAGIC = b"FPBUNDLE"
DIGEST_PREFIX = "bundle-"


class BundleError(ValueError):
    """A body that says it is a bundle but is not a well-formed one."""


@dataclass(frozen=True)
class UdfCall:
    """One UDF of a bundle: its functions, innermost first (a chain), the
    input columns of its positional and keyword arguments, and the Spark
    return type of its outermost function (its column's type)."""

    functions: tuple[Callable, ...]
    args: tuple[int, ...]
    kwargs: dict[str, int]
    return_type: object

    @cached_property
    def function(self) -> Callable:
        """The chain as one function: each result passed on as it is."""
        if len(self.functions) == 1:
            return self.functions[0]
        first, outer = self.functions[0], self.functions[1:]

        def chained(*args, **kwargs):
            value = first(*args, **kwargs)
            for function in outer:
                value = function(value)
            return value

        return chained

    def __call__(self, columns):
        """The UDF once on ``columns`` (pandas Series, by input column)."""
        return self.function(*(columns[i] for i in self.args), **{k: columns[i] for k, i in self.kwargs.items()})

    def per_row(self, columns: list[list], rows: int) -> list:
        """The UDF on each of ``rows`` rows of ``columns`` (Python values, by input column)."""
        function = self.function
        positional = zip(*(columns[i] for i in self.args)) if self.args else repeat((), rows)
        if not self.kwargs:
            return [function(*row) for row in positional]
        names = tuple(self.kwargs)
        keywords = zip(*(columns[i] for i in self.kwargs.values()))
        return [function(*row, **dict(zip(names, values))) for row, values in zip(positional, keywords)]


@dataclass(frozen=True)
class UdfBundle:
    calls: tuple[UdfCall, ...]

    def is_single_udf(self) -> bool:
        """Whether this is one UDF, unchained, with positional arguments only."""
        return len(self.calls) == 1 and len(self.calls[0].functions) == 1 and not self.calls[0].kwargs

    def check_columns(self, columns: int) -> None:
        """Refuses a bundle whose arguments are not among a stream's ``columns``."""
        for call in self.calls:
            bad = [i for i in (*call.args, *call.kwargs.values()) if not 0 <= i < columns]
            if bad:
                raise BundleError(f"argument columns {bad} are not among the stream's {columns} input columns")

    @classmethod
    def of(cls, command: SparkCommand, columns: int) -> "UdfBundle":
        """A single command over all of a stream's columns, as a bundle of one."""
        return cls((UdfCall((command.func,), tuple(range(columns)), {}, command.return_type),))


def is_bundle(body: bytes) -> bool:
    return bytes(body[: len(MAGIC)]) == MAGIC


def read_bundle(body: bytes, digest: str, load_command: Callable[[bytes], SparkCommand]) -> UdfBundle:
    """The bundle in ``body``, whose digest must be ``digest``; each command is
    loaded with ``load_command`` (which checks its envelope)."""
    expected = DIGEST_PREFIX + hashlib.sha256(body).hexdigest()
    if digest != expected:
        raise BundleError(f"the bundle's digest is {expected}, not the digest {digest} in open")
    layout, envelopes = _split(memoryview(body)[len(MAGIC) :])
    commands = [load_command(envelope) for envelope in envelopes]
    return UdfBundle(tuple(_call(udf, commands) for udf in _udfs(layout)))


def _split(rest: memoryview) -> tuple[dict, list[bytes]]:
    layout_size = _unpack("<I", rest, 0)
    layout_end = 4 + layout_size
    try:
        layout = json.loads(bytes(rest[4:layout_end]))
    except ValueError as error:
        raise BundleError(f"the bundle's layout is not JSON: {error}") from None
    count = _unpack("<I", rest, layout_end)
    offset, envelopes = layout_end + 4, []
    for _ in range(count):
        size = _unpack("<Q", rest, offset)
        offset += 8
        if offset + size > len(rest):
            raise BundleError("the bundle ends inside a command")
        envelopes.append(bytes(rest[offset : offset + size]))
        offset += size
    if offset != len(rest):
        raise BundleError(f"{len(rest) - offset} bytes follow the bundle's last command")
    return layout, envelopes


def _unpack(layout: str, data: memoryview, offset: int) -> int:
    size = struct.calcsize(layout)
    if offset + size > len(data):
        raise BundleError("the bundle is cut short")
    return struct.unpack_from(layout, data, offset)[0]


def _udfs(layout) -> list:
    udfs = layout.get("udfs") if isinstance(layout, dict) else None
    if not isinstance(udfs, list) or not udfs:
        raise BundleError("the bundle's layout has no list of udfs")
    return udfs


def _call(udf, commands: list[SparkCommand]) -> UdfCall:
    try:
        chain = [commands[i] for i in udf["functions"]]
        args = tuple(int(i) for i in udf["args"])
        kwargs = {str(name): int(i) for name, i in udf.get("kwargs", {}).items()}
    except (KeyError, IndexError, TypeError, ValueError, AttributeError) as error:
        raise BundleError(f"a udf of the bundle's layout is malformed ({error!r}): {udf!r}") from None
    if not chain:
        raise BundleError(f"a udf of the bundle's layout has no functions: {udf!r}")
    return UdfCall(tuple(c.func for c in chain), args, kwargs, chain[-1].return_type)
