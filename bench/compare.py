"""The per-version bench results side by side: `python bench/compare.py results/*/latest.json`.

First one row per CPython: memlens's geometric mean (Python allocators traced, and the fast
mode), Memray's (default, and with Python allocators), the workloads where memlens costs more
than Memray's default, the largest capture, the largest extra RSS of each, and the start-up
cost. Then, per workload, every version's time ratios, extra RSS and capture size in one table.
Every figure is a median of interleaved runs (bench/run.py): on a shared machine the ratios are
what can be compared, not the seconds.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

MiB = 2**20
TIMED = ["memlens", "memlens-fast", "memray", "memray-py"]


def times(ratios: dict[str, float]) -> list[str]:
    """The ratios of TIMED, "-" for a mode the run left out (bench/run.py --modes)."""
    return [f"{ratios[mode]:.2f}x" if mode in ratios else "-" for mode in TIMED]


def summary_row(report: dict) -> list[str]:
    ratios = report["ratio_to_python"]
    geomean = report["geomean_ratio"]
    extra = report["extra_rss_bytes"]
    worse = [w for w, r in ratios.items() if r["memlens"] > r["memray"]]
    biggest = max(
        size
        for sizes in report["output_bytes"].values()
        for mode, size in sizes.items()
        if mode.startswith("memlens")
    )

    def most(mode: str) -> str:
        return f"{max(e[mode] for e in extra.values()) / MiB:+.0f}"

    return [
        report["python"],
        *times(geomean),
        ", ".join(worse) or "none",
        f"{biggest / 1024:.0f} KiB",
        most("memlens"),
        most("memray"),
        f"+{report['startup']['overhead_ms']:.0f} ms",
    ]


def workload_rows(report: dict) -> list[list[str]]:
    version = ".".join(report["python"].split(".")[:2])
    rows = []
    for workload, ratios in report["ratio_to_python"].items():
        extra = report["extra_rss_bytes"][workload]
        size = report["output_bytes"][workload].get("memlens", 0)
        rows.append(
            [
                version,
                workload,
                f"{report['median_seconds'][workload]['python']:.2f} s",
                *times(ratios),
                f"{extra['memlens'] / MiB:+.0f}",
                f"{extra['memray'] / MiB:+.0f}",
                f"{size / 1024:.0f} KiB",
            ]
        )
    return rows


def print_table(title: str, rows: list[list[str]]) -> None:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    print(f"\n{title}")
    for n, cells in enumerate(rows):
        print("  ".join(c.ljust(widths[i]) for i, c in enumerate(cells)))
        if n == 0:
            print("  ".join("-" * w for w in widths))


def main(paths: list[str]) -> int:
    reports = [json.loads(Path(p).read_text()) for p in paths]
    header = [
        "python",
        "memlens",
        "fast",
        "memray",
        "memray-py",
        "memlens > memray on",
        "capture max",
        "memlens RSS max",
        "memray RSS max",
        "start-up",
    ]
    print_table(
        "geometric mean wall time as a ratio to the unprofiled run; extra RSS in MiB",
        [header] + [summary_row(r) for r in reports],
    )
    header = [
        "py",
        "workload",
        "python",
        "memlens",
        "fast",
        "memray",
        "memray-py",
        "memlens RSS",
        "memray RSS",
        "capture",
    ]
    print_table(
        "per workload: median wall time as a ratio to the unprofiled run (interleaved runs); "
        "extra peak RSS in MiB; memlens capture",
        [header] + [row for r in reports for row in workload_rows(r)],
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
