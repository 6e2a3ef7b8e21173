"""The targets of issue 6, judged from one run's results.

Each verdict names the worst case of its group, since a target holds only
if it holds for every case in it; the geometric mean is shown beside it.
"""

import math
from dataclasses import dataclass

from benchmarks import timing

# RSS moves in pages and the allocator keeps some slack: a difference this
# small between two processes is noise, not a library using more memory.
MEMORY_SLACK_BYTES = 1 << 20


@dataclass(frozen=True)
class Verdict:
    target: str
    summary: str
    met: bool | None  # None: no case of the group was measured

    def line(self):
        status = {True: "MET", False: "MISSED", None: "NOT MEASURED"}[self.met]
        return f"{self.target}: {self.summary}: {status}"

    def as_json(self):
        return {"target": self.target, "summary": self.summary, "met": self.met}


def judge(results):
    return [
        speedup_target(results, "code", "dumps", 8.0, "dumps of functions and classes"),
        speedup_target(results, "code", "loads", 3.0, "loads of functions and classes (native target)"),
        pickle_time_target(results, "fraction", "dumps", 1.15, "dumps of 100k Fractions"),
        pickle_time_target(results, "data", "dumps", 1.05, "dumps of plain data"),
        pickle_time_target(results, "data", "loads", 1.05, "loads of plain data"),
        memory_target(results),
        size_target(results),
    ]


def ratios(results, group, op, numerator, denominator):
    """{case: numerator's time / denominator's} for the cases of `group`
    that timed both (see `timing.ratio`)."""
    found = {}
    for case in results["cases"]:
        if case["group"] != group or op not in case["ops"]:
            continue
        op_timing = case["ops"][op]
        if {numerator, denominator} <= op_timing["median_seconds"].keys():
            found[case["name"]] = timing.ratio(op_timing, numerator, denominator)
    return found


def geometric_mean(values):
    return math.exp(sum(math.log(v) for v in values) / len(values))


def speedup_target(results, group, op, goal, target):
    speedups = ratios(results, group, op, "cloudpickle", "flightpickle")
    if not speedups:
        return Verdict(f"{target}, target {goal:g}x faster than cloudpickle", "no case run", None)
    worst = min(speedups, key=speedups.get)
    summary = (
        f"{geometric_mean(speedups.values()):.2f}x faster than cloudpickle (geometric mean), "
        f"worst {speedups[worst]:.2f}x ({worst})"
    )
    if op == "loads":
        summary += first_loads_summary(results, group)
    return Verdict(f"{target}, target {goal:g}x", summary, speedups[worst] >= goal)


def first_loads_summary(results, group):
    """How a process's first load of each code compares (no code object
    reused): shown beside the loads verdict, which judges repeated loads."""
    speedups = ratios(results, group, "first loads", "cloudpickle", "flightpickle")
    if not speedups:
        return ""
    worst = min(speedups, key=speedups.get)
    return (
        f"; first loads {geometric_mean(speedups.values()):.2f}x (geometric mean), "
        f"worst {speedups[worst]:.2f}x ({worst})"
    )


def pickle_time_target(results, group, op, goal, target):
    times = ratios(results, group, op, "flightpickle", "pickle")
    if not times:
        return Verdict(f"{target}, target within {goal:g}x of pickle", "no case run", None)
    worst = max(times, key=times.get)
    summary = f"worst {times[worst]:.2f}x plain pickle's time ({worst})"
    cloud = ratios(results, group, op, "cloudpickle", "pickle")
    if cloud:
        summary += f"; cloudpickle worst {max(cloud.values()):.2f}x"
    return Verdict(f"{target}, target within {goal:g}x of pickle", summary, times[worst] <= goal)


def memory_target(results):
    target = "peak memory of large dumps, target no higher than cloudpickle's"
    rows = [
        (case["name"], case["memory_bytes"]["flightpickle"], case["memory_bytes"]["cloudpickle"])
        for case in results["cases"]
        if {"flightpickle", "cloudpickle"} <= case.get("memory_bytes", {}).keys()
    ]
    if not rows:
        return Verdict(target, "not measured", None)
    excess = {name: flight - cloud for name, flight, cloud in rows}
    worst = max(excess, key=excess.get)
    summary = f"worst {excess[worst] / 2**20:+.1f} MiB vs cloudpickle ({worst}; 1 MiB counts as noise)"
    return Verdict(target, summary, excess[worst] <= MEMORY_SLACK_BYTES)


def size_target(results):
    target = "pickle size, target no larger than cloudpickle's"
    rows = [(case["name"], case["size_bytes"]) for case in results["cases"]]
    if not rows:
        return Verdict(target, "no case run", None)
    excess = {name: sizes["flightpickle"] - sizes["cloudpickle"] for name, sizes in rows}
    worst = max(excess, key=excess.get)
    larger = [name for name, extra in excess.items() if extra > 0]
    summary = f"larger in {len(larger)} of {len(rows)} cases; worst {excess[worst]:+d} bytes ({worst})"
    return Verdict(target, summary, not larger)
