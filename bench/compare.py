"""The per-version bench results side by side: `python bench/compare.py results/*/latest.json`.

One row per CPython: memlens's geometric mean (Python allocators traced, and the fast mode),
Memray's (default, and with Python allocators), the workloads where memlens costs more than
Memray's default, the largest capture, the largest extra RSS of each, and the start-up cost.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

MiB = 2**20


def row(report: dict) -> list[str]:
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
        f"{geomean['memlens']:.2f}x",
        f"{geomean['memlens-fast']:.2f}x",
        f"{geomean['memray']:.2f}x",
        f"{geomean['memray-py']:.2f}x",
        ", ".join(worse) or "none",
        f"{biggest / 1024:.0f} KiB",
        most("memlens"),
        most("memray"),
        f"+{report['startup']['overhead_ms']:.0f} ms",
    ]


def main(paths: list[str]) -> int:
    header = [
        "python", "memlens", "fast", "memray", "memray-py", "memlens > memray on",
        "capture max", "memlens RSS max", "memray RSS max", "start-up",
    ]
    rows = [header] + [row(json.loads(Path(p).read_text())) for p in paths]
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    print("\ngeometric mean wall time as a ratio to the unprofiled run; extra RSS in MiB")
    for n, cells in enumerate(rows):
        print("  ".join(c.ljust(widths[i]) for i, c in enumerate(cells)))
        if n == 0:
            print("  ".join("-" * w for w in widths))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
