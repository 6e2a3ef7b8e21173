"""Peak memory of one `dumps`, measured in a fresh process.

Why process RSS and not tracemalloc: tracemalloc sees only what goes
through Python's allocators (and numpy's, which reports to it), while
flightpickle's Rust code allocates through the system allocator, unseen.
RSS sees every allocation, whoever makes it. A fresh process per
measurement keeps the harness's own heap out of it; resetting the
high-water mark (/proc/self/clear_refs) after the object is built makes
the peak that of the dump alone. Reported: peak RSS during the dump minus
RSS just before it, i.e. the extra memory the dump needed, output included.

Usage: python -m benchmarks.memory CASE LIBRARY (prints one JSON object).
"""

import json
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def status_kib(field):
    text = Path("/proc/self/status").read_text()
    return int(re.search(rf"^{field}:\s+(\d+) kB", text, re.MULTILINE).group(1))


def reset_peak():
    """True if the kernel reset VmHWM to the current RSS."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def measure_here(case_name, library_name):
    from benchmarks.cases import CASES_BY_NAME, LIBRARIES

    case = CASES_BY_NAME[case_name]
    library = LIBRARIES[library_name]
    obj = case.build()
    exact = reset_peak()
    before = status_kib("VmRSS")
    payload, buffers = library.dump(obj, case.out_of_band)
    peak = status_kib("VmHWM")
    del payload, buffers
    return {"peak_extra_bytes": (peak - before) * 1024, "exact": exact}


def measure(case_name, library_name):
    """Runs `measure_here` in a child interpreter (the same one as ours)."""
    command = [sys.executable, "-m", "benchmarks.memory", case_name, library_name]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


if __name__ == "__main__":
    print(json.dumps(measure_here(sys.argv[1], sys.argv[2])))
