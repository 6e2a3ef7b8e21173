"""What a pickle would import and call, read by the Rust core without running it.

``inspect_payload`` takes a plain pickle or a sealed payload (which it verifies
first, as far as the keys given allow) and lists every global the pickle names,
the modules that loading it imports, the globals it calls, and each function,
class, enum and module that travels by value with its size in bytes.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from . import _native, sealing

__all__ = ["ByValue", "Inspection", "inspect_payload"]


@dataclass(frozen=True)
class ByValue:
    kind: str  # "function", "class", "enum" or "module"
    name: str | None
    bytes: int


@dataclass(frozen=True)
class Inspection:
    size: int
    sealed: sealing.SealedHeader | None
    protocol: int | None
    modules: list[str]
    globals: dict[str, int]
    calls: dict[str, int]
    by_value: list[ByValue]
    out_of_band_buffers: int

    def to_dict(self) -> dict:
        return asdict(self)


def inspect_payload(data, *, key=None, key_id=None, keys=None) -> Inspection:
    """Inspect a plain pickle or a sealed payload without unpickling it.

    A sealed payload's digest is always checked and, when it is signed and a
    key for it is known, its signature too; its Python version is not, since
    inspecting a payload from another Python is safe and often the point.
    """
    data = bytes(data)
    header = None
    pickled = data
    if data.startswith(_native.ENVELOPE_MAGIC):
        pickled, fields = sealing._open(data, key, key_id, keys, False, False, sealing.DEFAULT_MAX_SIZE)
        header = sealing.SealedHeader(**fields)
    try:
        found = _native.inspect_pickle(bytes(pickled))
    except ValueError as error:
        raise ValueError(f"{error}; is this a pickle or a sealed payload?") from None
    return Inspection(
        size=len(data),
        sealed=header,
        protocol=found["protocol"],
        modules=found["modules"],
        globals=dict(found["globals"]),
        calls=dict(found["calls"]),
        by_value=[ByValue(*item) for item in found["by_value"]],
        out_of_band_buffers=found["out_of_band_buffers"],
    )


def format_table(inspection: Inspection, source: str) -> str:
    """The human-readable report of ``flightpickle inspect``."""
    lines = [f"{source}: {inspection.size} bytes, pickle protocol {inspection.protocol}"]
    header = inspection.sealed
    if header is not None:
        implementation, major, minor = header.python
        signed = f"signed with key {header.key_id!r}" if header.key_id else "not signed"
        compressed = "compressed" if header.compressed else "not compressed"
        lines.append(
            f"sealed by flightpickle {header.writer_version} on {implementation} {major}.{minor}, "
            f"target {header.target}, {signed}, {compressed}, digest {header.digest[:16]}"
        )
    lines.append(f"\nmodules imported on load ({len(inspection.modules)}):")
    lines.extend(f"  {module}" for module in inspection.modules)
    lines.append(f"\nglobals named ({len(inspection.globals)}):")
    lines.extend(f"  {count:5d}  {name}" for name, count in inspection.globals.items())
    lines.append(f"\nglobals called ({len(inspection.calls)}):")
    lines.extend(f"  {count:5d}  {name}" for name, count in inspection.calls.items())
    lines.append(f"\ntravelling by value ({len(inspection.by_value)}):")
    lines.extend(f"  {item.kind:8s} {item.bytes:8d} bytes  {item.name or '?'}" for item in inspection.by_value)
    if inspection.out_of_band_buffers:
        lines.append(f"\nout-of-band buffers: {inspection.out_of_band_buffers}")
    return "\n".join(lines)
