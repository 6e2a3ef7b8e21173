"""What a function or class drags along when it is pickled, and what each part costs.

``explain(udf)`` lists, before anything is sent anywhere, every global the
function's code uses, every closure value, its defaults and attributes, with
the size each would add to the pickle, largest first. A UDF that captured a
200 MB DataFrame by accident shows it on the first line.

Each part is measured by pickling it alone, so parts that share an object
(two globals pointing at one array) each count it; ``total_bytes`` is the
size of the whole pickle, where shared objects are written once.
"""

from __future__ import annotations

import types
from dataclasses import dataclass, field

from . import _native

__all__ = ["Capture", "Explanation", "explain"]


@dataclass(frozen=True)
class Capture:
    kind: str  # "global", "closure", "default", "keyword default", "attribute" or "class attribute"
    name: str
    type: str
    bytes: int | None  # None when the part cannot be pickled at all
    by_value: bool  # a function, class or module that travels by value itself
    error: str | None = None


@dataclass(frozen=True)
class Explanation:
    name: str
    by_value: bool
    total_bytes: int | None
    captures: list[Capture] = field(default_factory=list)
    error: str | None = None

    def __str__(self) -> str:
        how = "by value" if self.by_value else "by reference (only its name travels)"
        total = "cannot be pickled" if self.total_bytes is None else f"{self.total_bytes} bytes"
        lines = [f"{self.name}: {total}, {how}"]
        if self.error:
            lines.append(f"  error: {self.error}")
        for part in self.captures:
            size = "unpicklable" if part.bytes is None else f"{part.bytes:>10d} B"
            travels = " (by value)" if part.by_value else ""
            lines.append(f"  {size}  {part.kind:16s} {part.name}: {part.type}{travels}")
            if part.error:
                lines.append(f"              {part.error}")
        return "\n".join(lines)


def explain(obj, *, protocol: int | None = None, target: str | None = None) -> Explanation:
    """Explain what pickling ``obj`` (a function or a class) would ship."""
    import flightpickle

    def measure(value) -> tuple[int | None, str | None]:
        try:
            return len(flightpickle.dumps(value, protocol=protocol, target=target)), None
        except Exception as error:  # the point is to report it, not to stop at it
            return None, f"{type(error).__name__}: {error}"

    total, error = measure(obj)
    name = getattr(obj, "__qualname__", type(obj).__qualname__)
    if isinstance(obj, types.FunctionType):
        by_value = _native.travels_by_value(obj)
        parts = _function_parts(obj) if by_value else []
    elif isinstance(obj, type):
        by_value = _native.travels_by_value(obj)
        parts = _class_parts(obj) if by_value else []
    else:
        raise TypeError(f"explain() takes a function or a class, not {type(obj).__name__}; "
                        "pickle.dumps tells the size of other objects")
    captures = [_capture(kind, key, value, measure) for kind, key, value in parts]
    captures.sort(key=lambda c: -1 if c.bytes is None else c.bytes, reverse=True)
    return Explanation(name, by_value, total, captures, error)


def _capture(kind, name, value, measure) -> Capture:
    size, error = measure(value)
    travels = isinstance(value, (types.FunctionType, type, types.ModuleType)) and _native.travels_by_value(value)
    return Capture(kind, name, type(value).__qualname__, size, travels, error)


def _function_parts(func):
    yield from (("global", name, value) for name, value in _native.captured_globals(func).items())
    for name, cell in zip(func.__code__.co_freevars, func.__closure__ or ()):
        try:
            yield "closure", name, cell.cell_contents
        except ValueError:  # an empty cell ships nothing
            continue
    for index, value in enumerate(func.__defaults__ or ()):
        yield "default", f"#{index}", value
    yield from (("keyword default", name, value) for name, value in (func.__kwdefaults__ or {}).items())
    yield from (("attribute", name, value) for name, value in vars(func).items())


# Attributes every class has, which say nothing about what it captured.
_CLASS_BOOKKEEPING = {"__module__", "__qualname__", "__doc__", "__dict__", "__weakref__", "__annotations__"}


def _class_parts(cls):
    for name, value in vars(cls).items():
        if name not in _CLASS_BOOKKEEPING:
            yield "class attribute", name, value
