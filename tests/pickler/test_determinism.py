"""The same source pickles to the same bytes in every process, whatever the
hash seed: pickles can be cached and compared by digest."""

import os
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent("""
    import hashlib, math, sys, flightpickle
    FACTOR = 3
    def helper(x):
        return math.floor(x) * FACTOR
    def udf(x, *, scale=2):
        "doc"
        return helper(x) * scale + len(str(x))
    def make():
        bias = {"a": 1, "b": 2}
        return lambda v: udf(v) + bias["a"]
    udf.meta = {"name": "udf"}
    sys.stdout.write(hashlib.sha256(flightpickle.dumps((udf, make()), protocol=5)).hexdigest())
""")


def digest(seed):
    env = {**os.environ, "PYTHONHASHSEED": str(seed)}
    proc = subprocess.run([sys.executable, "-c", SCRIPT], env=env,
                          capture_output=True, check=True, timeout=60)
    return proc.stdout


def test_function_pickles_do_not_depend_on_the_process():
    assert len({digest(seed) for seed in (0, 1, 12345)}) == 1
