"""A running JVM's heap use, read from its performance-counter file.

HotSpot publishes its counters (the ones ``jstat`` shows) in a memory-mapped file,
``/tmp/hsperfdata_<user>/<pid>``, unless the JVM runs with ``-XX:-UsePerfData``.
Reading that file costs a few hundred microseconds; attaching ``jcmd`` or ``jstat``
would start a JVM per sample, which a two-core machine cannot spare every few seconds.

The file starts with a 32-byte prologue (magic ``0xcafec0c0``, byte order, versions,
the offset of the first entry and the number of entries); each entry is a 20-byte
header (its length, the offsets of its name and data, its type) followed by a
NUL-terminated name and the value. Only scalar ``long`` counters are read here.
"""

from __future__ import annotations

import getpass
import struct
from pathlib import Path

MAGIC = 0xCAFEC0C0
PROLOGUE = struct.Struct(">IBBBBiiqii")  # the magic and byte order are read big-endian first
ENTRY_HEADER = "iiibbbbi"
LONG_TYPE = ord("J")

# Counter names of the serial and parallel collectors (the executors run the serial one).
YOUNG_USED = ("sun.gc.generation.0.space.0.used", "sun.gc.generation.0.space.1.used", "sun.gc.generation.0.space.2.used")
OLD_USED = "sun.gc.generation.1.space.0.used"
GENERATION_CAPACITY = ("sun.gc.generation.0.capacity", "sun.gc.generation.1.capacity")
METASPACE_USED = "sun.gc.metaspace.used"


def counter_file(pid: int) -> Path:
    return Path(f"/tmp/hsperfdata_{getpass.getuser()}/{pid}")


def read_long_counters(data: bytes) -> dict[str, int]:
    """Every scalar ``long`` counter in a counter file's bytes; empty if the file is not one."""
    if len(data) < PROLOGUE.size or int.from_bytes(data[:4], "big") != MAGIC:
        return {}
    order = ">" if data[4] == 0 else "<"
    _, _, _, _, _, _, _, _, entry_offset, entries = struct.unpack(order + PROLOGUE.format[1:], data[: PROLOGUE.size])
    header = struct.Struct(order + ENTRY_HEADER)
    value = struct.Struct(order + "q")
    counters = {}
    offset = entry_offset
    for _ in range(entries):
        if offset + header.size > len(data):
            break  # a file the JVM was still writing: keep what was whole
        length, name_offset, vector_length, data_type, _, _, _, data_offset = header.unpack_from(data, offset)
        if length <= 0:
            break
        if data_type == LONG_TYPE and vector_length == 0 and offset + data_offset + value.size <= len(data):
            name_start = offset + name_offset
            name = data[name_start : data.index(b"\0", name_start)].decode("ascii", "replace")
            counters[name] = value.unpack_from(data, offset + data_offset)[0]
        offset += length
    return counters


def heap_use(pid: int) -> dict[str, int] | None:
    """Heap used, old generation used, heap committed and metaspace used, in bytes;
    None when the JVM publishes no counters (ended, or ``-XX:-UsePerfData``)."""
    try:
        counters = read_long_counters(counter_file(pid).read_bytes())
    except OSError:
        return None
    if OLD_USED not in counters:
        return None
    return {
        "heap_used": sum(counters.get(name, 0) for name in YOUNG_USED) + counters[OLD_USED],
        "old_gen_used": counters[OLD_USED],
        "heap_committed": sum(counters.get(name, 0) for name in GENERATION_CAPACITY),
        "metaspace_used": counters.get(METASPACE_USED, 0),
    }
