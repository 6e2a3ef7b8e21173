"""How much of a process's resident memory glibc's malloc holds, read from ``/proc``.

glibc's main arena grows the ``[heap]`` segment. Every other arena takes its memory in heaps
that it maps itself: each starts at a multiple of 64 MiB (on 64-bit systems), is at most that
large, and begins with a header, ``heap_info``: the arena's address, the previous heap, the
heap's size and how much of it is writable. A writable anonymous mapping that starts on that
boundary with a header whose writable size is the mapping's own is taken for such a heap; the
JVM's own mappings (Java heap, metaspace, code cache, thread stacks) do not start with one
that fits. Reading the header takes
``/proc/<pid>/mem``, which the kernel opens only to a process allowed to trace the target, as
a parent is its descendants: the benchmark reads the executors it started.

What malloc holds is what is in use and what was freed but kept for reuse alike; the split
says where a JVM's RSS grows, not why.
"""

from __future__ import annotations

import struct
import sys
from dataclasses import dataclass
from pathlib import Path

# glibc's HEAP_MAX_SIZE on 64-bit systems: twice the largest mmap threshold (32 MiB).
HEAP_ALIGNMENT = 64 << 20
# heap_info's first four fields on a 64-bit little-endian system: ar_ptr, prev, size, mprotect_size.
HEADER = struct.Struct("<QQQQ")
SUPPORTED = sys.platform == "linux" and sys.maxsize > 2**32 and sys.byteorder == "little"


@dataclass(frozen=True)
class Mapping:
    start: int
    end: int
    writable: bool
    name: str
    rss: int  # bytes
    anonymous: int  # bytes

    @property
    def size(self) -> int:
        return self.end - self.start


def mappings(smaps: str) -> list[Mapping]:
    """The mappings of a ``/proc/<pid>/smaps`` text, with their resident and anonymous bytes."""
    found: list[Mapping] = []
    header, sizes = None, {}
    for line in smaps.splitlines():
        fields = line.split()
        if not fields:
            continue
        if "-" in fields[0] and not fields[0].endswith(":"):
            if header is not None:
                found.append(mapping(header, sizes))
            header, sizes = fields, {}
        elif fields[0] in ("Rss:", "Anonymous:") and len(fields) >= 2:
            sizes[fields[0]] = int(fields[1]) * 1024
    if header is not None:
        found.append(mapping(header, sizes))
    return found


def mapping(header: list[str], sizes: dict[str, int]) -> Mapping:
    start, end = (int(address, 16) for address in header[0].split("-"))
    name = header[5] if len(header) > 5 else ""
    return Mapping(start, end, header[1].startswith("rw"), name, sizes.get("Rss:", 0), sizes.get("Anonymous:", 0))


def could_be_heap(candidate: Mapping) -> bool:
    """Anonymous, writable, on a heap boundary and no larger than a heap."""
    return (not candidate.name and candidate.writable and candidate.start % HEAP_ALIGNMENT == 0
            and candidate.size <= HEAP_ALIGNMENT)


def is_arena_heap(candidate: Mapping, header: bytes) -> bool:
    """Whether the mapping, whose first bytes are ``header``, is a glibc arena's heap."""
    if not could_be_heap(candidate) or len(header) < HEADER.size:
        return False
    arena, _previous, size, writable_size = HEADER.unpack_from(header)
    # A heap that shrank keeps its pages writable (glibc only advises the kernel to drop
    # them), so its mapping is the writable size, and its size in use may be less.
    return arena != 0 and 0 < size <= writable_size == candidate.size


@dataclass(frozen=True)
class MallocHeaps:
    rss: int  # resident bytes of the main arena's [heap] and of every other arena's heaps
    arena_heaps: int  # how many heaps the other arenas have mapped


def malloc_heaps(pid: int) -> MallocHeaps | None:
    """What glibc's malloc holds resident in the process; None where it cannot be read
    (not a 64-bit little-endian Linux, the process ended, or it may not be traced)."""
    if not SUPPORTED:
        return None
    try:
        found = mappings(Path(f"/proc/{pid}/smaps").read_text())
        with open(f"/proc/{pid}/mem", "rb", buffering=0) as memory:
            return count(found, memory)
    except (OSError, ValueError):
        return None


def count(found: list[Mapping], memory) -> MallocHeaps:
    rss, heaps = 0, 0
    for candidate in found:
        if candidate.name == "[heap]":
            rss += candidate.rss
        elif is_arena_heap(candidate, first_bytes(memory, candidate)):
            rss += candidate.anonymous
            heaps += 1
    return MallocHeaps(rss, heaps)


def first_bytes(memory, candidate: Mapping) -> bytes:
    """The header-sized start of a mapping that could be a heap; empty for any other."""
    if not could_be_heap(candidate):
        return b""
    try:
        memory.seek(candidate.start)
        return memory.read(HEADER.size)
    except OSError:
        return b""  # unmapped since smaps was read
