"""The three forms of a run's results: a table on stdout, JSON for
comparisons over time, a PNG bar chart."""

import json

from benchmarks.timing import ratio

LIBRARIES = ("flightpickle", "cloudpickle", "pickle")


def duration(seconds):
    if seconds is None:
        return "-"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


def byte_count(count):
    if count is None:
        return "-"
    for unit, scale in (("MiB", 2**20), ("KiB", 2**10)):
        if abs(count) >= scale:
            return f"{count / scale:.1f} {unit}"
    return f"{count} B"


def table(header, rows):
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows)]
    lines = [header, ["-" * w for w in widths], *rows]
    return "\n".join("  ".join(str(c).ljust(w) for c, w in zip(line, widths)).rstrip() for line in lines)


def timing_table(results):
    header = ["case", "op", *LIBRARIES, "x faster than cloudpickle", "x pickle's time"]
    rows = []
    for case in results["cases"]:
        for op, timing in case["ops"].items():
            median = timing["median_seconds"]
            speedup = f"{ratio(timing, 'cloudpickle', 'flightpickle'):.2f}"
            versus_pickle = f"{ratio(timing, 'flightpickle', 'pickle'):.2f}" if "pickle" in median else "-"
            rows.append(
                [case["name"], op, *(duration(median.get(lib)) for lib in LIBRARIES), speedup, versus_pickle]
            )
    return table(header, rows)


def size_table(results):
    header = ["case", *(f"size {lib}" for lib in LIBRARIES), *(f"peak {lib}" for lib in LIBRARIES)]
    rows = []
    for case in results["cases"]:
        sizes = case["size_bytes"]
        memory = case.get("memory_bytes", {})
        rows.append(
            [
                case["name"],
                *(byte_count(sizes.get(lib)) if lib in sizes else "-" for lib in LIBRARIES),
                *(byte_count(memory.get(lib)) if lib in memory else "-" for lib in LIBRARIES),
            ]
        )
    return table(header, rows)


def text(results, verdicts):
    settings = results["settings"]
    parts = [
        f"flightpickle {results['versions']['flightpickle']} vs cloudpickle "
        f"{results['versions']['cloudpickle']} vs pickle (protocol 5), Python {results['versions']['python']}",
        build_line(results),
        f"{rounds_line(settings)}; sizes include no out-of-band buffers; peak = extra RSS during one dumps",
        "",
        timing_table(results),
        "",
        size_table(results),
        "",
        "Targets (issue 6):",
        *(f"  {verdict.line()}" for verdict in verdicts),
    ]
    return "\n".join(parts)


def rounds_line(settings):
    rounds = f"medians of {settings['rounds']} interleaved rounds per case"
    # Runs saved before processes were recorded timed in one.
    processes = settings.get("processes", 1)
    if processes == 1:
        return rounds
    return f"{rounds} in each of {processes} processes: times the median of theirs, ratios the median of their ratios"


def build_line(results):
    # Runs saved before the build kind was recorded say nothing of it.
    guided = results.get("profile_guided_build")
    if guided is None:
        return "extension build: not recorded"
    if guided:
        return "extension build: profile-guided"
    return "extension build: plain release, without a profile (slower; see python/build_extension.sh)"


def write_json(results, verdicts, path):
    document = dict(results, targets=[verdict.as_json() for verdict in verdicts])
    path.write_text(json.dumps(document, indent=1) + "\n")


def write_chart(results, path):
    """Time of each library relative to cloudpickle's (`timing.ratio`), per case, for
    dumps and for loads; log scale, so 8x faster and 8x slower look alike."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cases = results["cases"]
    figure, axes = plt.subplots(1, 2, figsize=(13, 0.45 * len(cases) + 2.5), sharey=True)
    for axis, op, goal in zip(axes, ("dumps", "loads"), (8, 3)):
        draw_op(axis, cases, op)
        axis.axvline(1 / goal, color="grey", linestyle="--", linewidth=0.8)
        axis.set_xlabel(f"time / cloudpickle's time (dashed: the {goal}x target for functions and classes)")
    axes[0].set_yticks(range(len(cases)), [case["name"] for case in cases])
    axes[0].invert_yaxis()
    axes[1].legend(loc="lower right", fontsize="small")
    figure.suptitle("Median time relative to cloudpickle 3.1.2 (lower is faster)")
    figure.tight_layout(rect=(0, 0, 1, 0.95))
    figure.savefig(path, dpi=110)
    plt.close(figure)


def draw_op(axis, cases, op):
    height = 0.27
    for offset, lib in enumerate(LIBRARIES):
        positions, values = [], []
        for index, case in enumerate(cases):
            op_timing = case["ops"][op]
            if lib in op_timing["median_seconds"]:
                positions.append(index + (offset - 1) * height)
                values.append(ratio(op_timing, lib, "cloudpickle"))
        if values:
            axis.barh(positions, values, height=height, label=lib, color=f"C{offset}")
    axis.set_xscale("log")
    # A fixed, wide span: log bars start at the axis edge, so a tight span
    # would make a 1.1x difference look like a 10x one.
    axis.set_xlim(0.02, 20)
    axis.xaxis.set_major_formatter(lambda value, _: f"{value:g}x")
    axis.axvline(1.0, color="black", linewidth=0.8)
    axis.set_title(op)
