"""Benchmark documents -> statistics and the table `ringrun bench` prints (pure: no processes, no files).

A document holds `results` (one row per (impl, size): `impl`, `bytes`, `count`, `verified`, `samples` in seconds),
`ranks` and `unavailable` ({impl: reason}). Bandwidths follow nccl-tests: algbw = S / t, busbw = algbw * 2(N-1)/N.
"""

from statistics import median

from .options import format_size


def summarize(row, ranks):
    """The row's statistics: median and min (s), algbw and busbw (GB/s) at the median; None when not timed."""
    t = median(row["samples"]) if row["samples"] else None
    if t is None or t <= 0:
        return None
    algbw = row["bytes"] / t / 1e9
    return {"median": t, "min": min(row["samples"]), "algbw": algbw, "busbw": algbw * 2 * (ranks - 1) / ranks}


def medians(document, impl):
    """{bytes: median seconds} of `impl`'s verified, timed rows."""
    return {r["bytes"]: median(r["samples"]) for r in document["results"]
            if r["impl"] == impl and r["verified"] and r["samples"]}


def add_floor_ratios(document):
    """Give every timed row `vs_floor`: its median over the floor's at the same size (bench/floor.py), or None."""
    floor = medians(document, "floor")
    for row in document["results"]:
        reference = floor.get(row["bytes"])
        row["vs_floor"] = (median(row["samples"]) / reference if reference and row["verified"] and row["samples"]
                           else None)
    return document


def table(document, baseline="mpi"):
    """Text table: one line per (size, impl) in run order, each time relative to `baseline` at the same size and,
    when the floor was measured, to the floor; then one line per unavailable impl with its reason."""
    ranks = document["ranks"]
    floor = medians(document, "floor")
    header = (f"{'size':>6} {'count':>10} {'impl':>18} {'median_us':>11} {'min_us':>11} {'algbw_GB/s':>10} "
              f"{'busbw_GB/s':>10} {'vs_' + baseline:>8}" + (f" {'vs_floor':>8}" if floor else ""))
    lines = [header]
    base = {r["bytes"]: summarize(r, ranks) for r in document["results"] if r["impl"] == baseline and r["verified"]}
    for row in sorted(document["results"], key=lambda r: r["bytes"]):
        label = f"{format_size(row['bytes']):>6} {row['count']:>10} {row['impl']:>18}"
        if not row["verified"]:
            lines.append(f"{label} WRONG RESULT - not timed")
            continue
        stats = summarize(row, ranks)
        reference = base.get(row["bytes"])
        ratio = f"{stats['median'] / reference['median']:.2f}" if reference else "-"
        line = (f"{label} {stats['median'] * 1e6:>11.1f} {stats['min'] * 1e6:>11.1f} {stats['algbw']:>10.2f} "
                f"{stats['busbw']:>10.2f} {ratio:>8}")
        if floor:
            line += f" {stats['median'] / floor[row['bytes']]:>8.2f}" if row["bytes"] in floor else f" {'-':>8}"
        lines.append(line)
    for impl, reason in sorted(document.get("unavailable", {}).items()):
        lines.append(f"{impl}: unavailable ({reason})")
    return "\n".join(lines) + "\n"


def verified_impls(document):
    """Impls with at least one row, every row of them verified."""
    rows = {}
    for row in document["results"]:
        rows.setdefault(row["impl"], []).append(row["verified"])
    return sorted(impl for impl, flags in rows.items() if all(flags))


def train_table(document, baseline="ring"):
    """Time per training step (rank 0's, median and min over every step) of each impl, relative to `baseline`,
    with the test accuracy it reached; then the unavailable impls."""
    lines = [f"{'impl':>10} {'ranks':>5} {'step_ms':>9} {'min_ms':>8} {'vs_' + baseline:>8} {'accuracy':>8}"]
    base = next((median(r["samples"]) for r in document["results"] if r["impl"] == baseline), None)
    for row in document["results"]:
        step = median(row["samples"])
        ratio = f"{step / base:.2f}" if base else "-"
        flag = "" if row["verified"] else "  (not verified: differs from one process)"
        lines.append(f"{row['impl']:>10} {row['ranks']:>5} {step * 1e3:>9.3f} {min(row['samples']) * 1e3:>8.3f} "
                     f"{ratio:>8} {row['accuracy']:>8.4f}{flag}")
    for impl, reason in sorted(document.get("unavailable", {}).items()):
        lines.append(f"{impl}: unavailable ({reason})")
    return "\n".join(lines) + "\n"
