"""The parts of ``benchmarks.spark_memory`` that need no Spark cluster: reading a JVM's
heap counters and its malloc heaps, finding this process's descendants, and the verdict. No memory figure
of this machine is judged here."""

import dataclasses
import json
import os
import shutil
import struct
import subprocess
import sys
import time

import pytest

from benchmarks import hsperfdata, malloc_heaps
from benchmarks.spark_memory import judge
from benchmarks.spark_processes import descendants

OLD = "sun.gc.generation.1.space.0.used"
EDEN = "sun.gc.generation.0.space.0.used"


def counter_file_bytes(counters: dict, order: str, extra_string: bool = True) -> bytes:
    """A counter file laid out as HotSpot writes one: prologue, then entries."""
    entries = b""
    if extra_string:  # a string counter (a byte vector), which the reader skips
        name = b"java.property.java.vm.name\0"
        entries += entry_bytes(name, b"OpenJDK\0", ord("B"), vector_length=8, order=order)
    for name, value in counters.items():
        entries += entry_bytes(name.encode() + b"\0", struct.pack(order + "q", value), ord("J"), 0, order)
    count = len(counters) + (1 if extra_string else 0)
    prologue = struct.pack(">I", hsperfdata.MAGIC) + bytes([0 if order == ">" else 1, 2, 0, 1])
    prologue += struct.pack(order + "iiqii", 0, 0, 0, 32, count)
    return prologue + entries


def entry_bytes(name: bytes, data: bytes, data_type: int, vector_length: int, order: str) -> bytes:
    header_size = 20
    padded_name = name + b"\0" * (-len(name) % 8)
    length = header_size + len(padded_name) + len(data)
    header = struct.pack(order + "iiibbbbi", length, header_size, vector_length, data_type, 0, 0, 0,
                         header_size + len(padded_name))
    return header + padded_name + data


@pytest.mark.parametrize("order", [">", "<"])
def test_long_counters_are_read_in_either_byte_order(order):
    data = counter_file_bytes({EDEN: 10_000, OLD: 2**40, "sun.gc.metaspace.used": 7}, order)
    assert hsperfdata.read_long_counters(data) == {EDEN: 10_000, OLD: 2**40, "sun.gc.metaspace.used": 7}


def test_a_file_cut_short_keeps_its_whole_entries_and_a_foreign_file_gives_nothing():
    data = counter_file_bytes({EDEN: 1, OLD: 2}, "<", extra_string=False)
    assert hsperfdata.read_long_counters(data[:-4]) == {EDEN: 1}
    assert hsperfdata.read_long_counters(b"\0" * 64) == {}
    assert hsperfdata.read_long_counters(b"") == {}


def test_heap_use_of_a_process_without_counters_is_none():
    assert hsperfdata.heap_use(2**22 + 12345) is None  # no such pid's file


SLEEPER = "public class Sleeper { public static void main(String[] a) throws Exception { Thread.sleep(60000); } }"


@pytest.mark.skipif(shutil.which("java") is None, reason="no java on PATH")
def test_heap_use_of_a_live_serial_gc_jvm(tmp_path):
    source = tmp_path / "Sleeper.java"
    source.write_text(SLEEPER)
    jvm = subprocess.Popen(["java", "-XX:+UseSerialGC", "-Xmx64m", str(source)], stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        heap = None
        # The counters appear before the first sample of the young generation's use, which a
        # loaded machine can delay: wait for that sample too, within the same deadline.
        while (heap is None or heap["heap_used"] == 0) and time.monotonic() < deadline and jvm.poll() is None:
            time.sleep(0.5)
            heap = hsperfdata.heap_use(jvm.pid)
        assert heap is not None, "the JVM published no heap counters"
        assert 0 < heap["heap_committed"] <= 64 * 2**20
        # The young generation's use is sampled as the JVM runs, so it has started allocating;
        # metaspace's is updated only at collections, which a sleeping JVM may not have had.
        assert 0 <= heap["old_gen_used"] < heap["heap_used"] <= heap["heap_committed"]
    finally:
        jvm.kill()
        jvm.wait(timeout=30)


def test_descendants_follow_the_whole_tree_and_nothing_else():
    table = {10: (1, "python"), 11: (10, "java driver"), 12: (11, "java executor"), 13: (12, "serve"),
             14: (13, "worker"), 20: (1, "someone else's java"), 21: (20, "their executor")}
    assert descendants(10, table) == {11, 12, 13, 14}
    assert descendants(14, table) == set()


def test_verdict_compares_the_medians_of_the_two_windows():
    steady = [(t, 100.0 + (t % 2)) for t in range(0, 600, 5)]
    flat = judge(steady, (0, 60), (540, 600), tolerance=5.0)
    assert flat["verdict"] == "flat" and abs(flat["growth_pct"]) < 2

    growing = [(t, 100.0 + t / 10) for t in range(0, 600, 5)]
    grew = judge(growing, (0, 60), (540, 600), tolerance=5.0)
    assert grew["verdict"] == "GREW"
    assert grew["first_median"] == pytest.approx(102.75)
    assert grew["last_median"] == pytest.approx(156.75)

    late = [(t, 50.0) for t in range(300, 600, 5)]
    assert "growth_pct" not in judge(late, (0, 60), (540, 600), tolerance=5.0)


def test_report_of_synthetic_samples_writes_json_and_chart(tmp_path, capsys):
    from benchmarks import spark_memory

    def sample(t, jvm_rss):
        return {"t_s": t, "processes": {
            "executor 0 executor JVM": {"role": "executor JVM", "executor": "0", "pid": 1, "rss": jvm_rss,
                                        "rss_anon": jvm_rss - 20, "rss_file": 20,
                                        "heap": {"heap_used": 5, "old_gen_used": 2, "heap_committed": 9,
                                                 "metaspace_used": 1}},
            "executor 0 service supervisor": {"role": "service supervisor", "executor": "0", "pid": 2, "rss": 60},
        }}

    samples = [sample(t, 100 + (50 if t > 200 else 0)) for t in range(0, 300, 5)]
    run = {"warm_up_s": 60.0, "measured_s": 240.0, "warm_end_t_s": 60.0, "end_t_s": 300.0,
           "queries": {"udf": 3, "mapInArrow": 3}}
    args = spark_memory.parse_args(["--minutes", "4", "--output", str(tmp_path)])
    windows = {"first": (60.0, 120.0), "last": (240.0, 300.0)}
    rows = spark_memory.verdicts(samples, windows, args.tolerance)
    spark_memory.print_summary(run, args, rows)
    spark_memory.write_outputs(args, {"run": run, "windows_s": windows, "verdicts": rows, "samples": samples})

    printed = capsys.readouterr().out
    assert "6 queries in 240 s" in printed and "GREW" in printed and "flat" in printed
    (written,) = tmp_path.glob("spark-memory-*.json")
    verdict_of = {(row["process"], row["measure"]): row["verdict"] for row in json.loads(written.read_text())["verdicts"]}
    assert verdict_of[("executor 0 executor JVM", "RSS")] == "GREW"
    assert verdict_of[("executor 0 executor JVM", "heap used")] == "(not judged)"
    assert verdict_of[("executor 0 service supervisor", "RSS")] == "flat"
    assert written.with_suffix(".png").read_bytes().startswith(b"\x89PNG")


SMAPS = """\
7f0000000000-7f0000021000 rw-p 00000000 00:00 0
Size:                132 kB
Rss:                 128 kB
Anonymous:           124 kB
7f0000021000-7f0004000000 ---p 00000000 00:00 0
Rss:                   0 kB
Anonymous:             0 kB
55d0c0000000-55d0c0100000 rw-p 00000000 00:00 0                          [heap]
Rss:                 512 kB
Anonymous:           512 kB
7f1000000000-7f1000200000 r-xp 00000000 08:01 42                         /usr/lib/libc.so.6
Rss:                1024 kB
Anonymous:             0 kB
"""


def test_smaps_mappings_keep_their_range_access_name_and_sizes():
    first, reserved, main, library = malloc_heaps.mappings(SMAPS)
    assert (first.start, first.size, first.writable, first.name) == (0x7F0000000000, 0x21000, True, "")
    assert (first.rss, first.anonymous) == (128 * 1024, 124 * 1024)
    assert not reserved.writable
    assert (main.name, main.rss) == ("[heap]", 512 * 1024)
    assert (library.name, library.anonymous) == ("/usr/lib/libc.so.6", 0)


def test_an_arena_heap_is_known_by_its_alignment_and_header():
    heap = malloc_heaps.mappings(SMAPS)[0]
    header = malloc_heaps.HEADER.pack(heap.start + 32, 0, heap.size, heap.size)
    assert malloc_heaps.is_arena_heap(heap, header)
    assert not malloc_heaps.is_arena_heap(heap, malloc_heaps.HEADER.pack(0, 0, heap.size, heap.size))  # no arena
    shrunk = malloc_heaps.HEADER.pack(heap.start + 32, 0, 4096, heap.size)  # in use: less than mapped
    assert malloc_heaps.is_arena_heap(heap, shrunk)
    assert not malloc_heaps.is_arena_heap(heap, malloc_heaps.HEADER.pack(1, 0, 4096, 8192))  # another size
    assert not malloc_heaps.is_arena_heap(heap, malloc_heaps.HEADER.pack(1, 0, 2 * heap.size, heap.size))
    assert not malloc_heaps.is_arena_heap(heap, header[:16])  # cut short
    shifted = dataclasses.replace(heap, start=heap.start + 4096, end=heap.end + 4096)
    assert not malloc_heaps.is_arena_heap(shifted, header)  # not on a 64 MiB boundary
    named = dataclasses.replace(heap, name="/dev/shm/x")
    assert not malloc_heaps.is_arena_heap(named, header)


# Run in a fresh interpreter: in pytest's own process, earlier tests leave freed chunks in the
# arenas, and a new thread's blocks may reuse memory that is already resident.
THREAD_MALLOCS = """
import json, os, threading
from benchmarks import malloc_heaps

before = malloc_heaps.malloc_heaps(os.getpid())
held, ready, release = [], threading.Event(), threading.Event()

def allocate():
    # 100 kB blocks stay under malloc's mmap threshold, so they come from the thread's arena.
    held.extend(bytearray(100_000) for _ in range(400))
    ready.set()
    release.wait(30)

thread = threading.Thread(target=allocate)
thread.start()
ready.wait(30)
during = malloc_heaps.malloc_heaps(os.getpid())
release.set()
thread.join(30)
print(json.dumps([None if h is None else [h.rss, h.arena_heaps] for h in (before, during)]))
"""


@pytest.mark.skipif(not malloc_heaps.SUPPORTED, reason="glibc's heap layout is read on 64-bit little-endian Linux")
def test_memory_a_thread_mallocs_is_counted_in_its_process():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    # glibc's defaults, so that the thread gets an arena of its own
    env = {k: v for k, v in os.environ.items() if k not in ("MALLOC_ARENA_MAX", "GLIBC_TUNABLES")}
    run = subprocess.run([sys.executable, "-c", THREAD_MALLOCS], cwd=root, env=env, capture_output=True,
                         text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    before, during = json.loads(run.stdout)
    assert before is not None and during is not None
    assert during[0] >= before[0] + 30_000_000
    assert during[1] > before[1]  # the thread's blocks sit in an arena heap of its own


def test_malloc_heaps_of_no_such_process_is_none():
    assert malloc_heaps.malloc_heaps(2**22 + 12345) is None


def test_conf_option_takes_key_value_pairs_and_rejects_anything_else(capsys):
    from benchmarks import spark_memory

    args = spark_memory.parse_args(["--conf", "spark.executorEnv.X=a=b", "--conf", "spark.y="])
    assert args.conf == [("spark.executorEnv.X", "a=b"), ("spark.y", "")]
    with pytest.raises(SystemExit):
        spark_memory.parse_args(["--conf", "no-equals-sign"])
    assert "expected KEY=VALUE" in capsys.readouterr().err
