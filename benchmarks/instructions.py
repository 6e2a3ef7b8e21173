"""Instructions per call, counted by callgrind: noise-free where wall-clock
time is not (a shared machine, two cores).

    python -m benchmarks.instructions lambda:dumps class:loads ... [--calls N]

Runs `benchmarks.loop` under callgrind with 0 and N calls for each library
that can pickle the case, and prints (count at N - count at 0) / N. Each
callgrind output is kept in $TMPDIR for `callgrind_annotate --inclusive=yes`.
"""

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks.cases import CASES_BY_NAME, libraries_for
from benchmarks.memory import REPO

OUTPUT = Path(tempfile.gettempdir()) / "flightpickle-callgrind"


def count(case, library, op, calls):
    OUTPUT.mkdir(exist_ok=True)
    # The process id keeps two counts of the same case, run at once, from sharing a file.
    out_file = OUTPUT / f"{os.getpid()}-{case}-{library}-{op}-{calls}.out".replace(" ", "_")
    command = [
        "valgrind", "--tool=callgrind", f"--callgrind-out-file={out_file}",
        sys.executable, "-m", "benchmarks.loop", case, library, op, str(calls),
    ]
    # A fixed hash seed: with random ones, dict layouts and so the counts
    # of the same loop differ by several percent between runs.
    environment = dict(os.environ, PYTHONHASHSEED="0")
    done = subprocess.run(command, cwd=REPO, env=environment, capture_output=True, text=True, check=True)
    return int(re.search(r"Collected : (\d+)", done.stderr).group(1))


def per_call(case, library, op, calls):
    return (count(case, library, op, calls) - count(case, library, op, 0)) / calls


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", nargs="+", help="CASE:OP, e.g. lambda:dumps")
    parser.add_argument("--calls", type=int, default=200)
    arguments = parser.parse_args()
    for item in arguments.what:
        case_name, op = item.rsplit(":", 1)
        for library in libraries_for(CASES_BY_NAME[case_name]):
            instructions = per_call(case_name, library.name, op, arguments.calls)
            print(f"{case_name:24} {op:5} {library.name:12} {instructions:14,.0f} instructions/call", flush=True)


if __name__ == "__main__":
    main()
