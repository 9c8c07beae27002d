"""Statistics of a run: totals, the peak and when, allocation sizes, Python objects vs native vs
mmap, top locations, threads and modules.

`build(profile)` returns this JSON schema (`memlens stats --json`); it is stable: fields may be
added in a later schema version, never renamed or removed within one.

    {
      "schema": "memlens-stats/1",
      "capture": {"complete": bool, "argv": [str], "pid": int, "python_version": str,
                  "python_allocators": bool, "exit_code": int | null, "duration_s": float},
      "totals": {"alloc_count": int, "alloc_bytes": int,
                 "peak_bytes": int, "peak_count": int, "peak_s": float,   peak_s: from the start
                 "leak_count": int, "leak_bytes": int,   live at exit: referenced + lost
                 "referenced_bytes": int | null, "lost_bytes": int | null,
                 "referenced_complete": bool | null,       (as in `memlens json`)
                 "temp_count": int, "temp_bytes": int, "rss_peak": int},
      "size_histogram": [                     power-of-two buckets, smallest first, empty left out
        {"min_bytes": int, "max_bytes": int, "count": int, "bytes": int,
         "by_domain": {"python" | "native" | "mmap": {"count": int, "bytes": int}}}],
                                              (by_domain only when exact)
      "size_histogram_estimated": bool,       true for captures that do not count sizes
      "allocators": [{"name": str, "label": str, "count": int, "bytes": int}] | null,
                                              most bytes first; null: not counted (old capture)
      "domains": {"python" | "native" | "mmap":
                  {"alloc_count", "alloc_bytes", "peak_bytes", "leak_bytes": int}},
      "top_by_size":  [{"file", "line", "function", "alloc_bytes", "alloc_count", "peak_bytes"}],
      "top_by_count": [same fields],          the lines' self allocations, over the run
      "threads": [{"id": int, "name": str, "alloc_count", "alloc_bytes", "peak_bytes",
                   "leak_bytes": int}],       biggest alloc_bytes first
      "modules": [{"module": str, "kind": "user" | "library" | "import",
                   "alloc_count", "alloc_bytes", "peak_bytes", "leak_bytes": int}]
    }

The histogram and the allocators are exact: the tracker counts them as each allocation is made
(reports/sizes.py). For captures from before that, the histogram is estimated from each line's
mean sizes and said to be, and there is no allocator breakdown.
Modules: the top-level package for site-packages and the standard library, else the file;
each allocation counts for the module of its innermost frame.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from memlens import measures, origins
from memlens.model import DOMAINS, SELF, Profile
from memlens.reports import sizes, terminal
from memlens.reports.json_report import capture_fields, totals_fields
from memlens.units import format_bytes

SCHEMA = "memlens-stats/1"
TOP = 10
_FIGURES = ("alloc_count", "alloc_bytes", "peak_bytes", "leak_bytes")


def _column(profile: Profile, metric: str) -> np.ndarray:
    return profile.stats.values[:, measures.COLUMNS.index(metric)]


def _figures(profile: Profile, mask: np.ndarray) -> dict[str, int]:
    return {metric: int(_column(profile, metric)[mask].sum()) for metric in _FIGURES}


class _Lines:
    """The lines' self figures (what each line allocated itself), per line key."""

    def __init__(self, profile: Profile) -> None:
        _, self.frames = profile.line_keys
        sums = profile.line_totals(SELF, _FIGURES)
        self.sums = {metric: sums[:, i] for i, metric in enumerate(_FIGURES)}

    def top(self, metric: str) -> list[dict[str, Any]]:
        values = self.sums[metric]
        ranked = [k for k in np.argsort(-values, kind="stable")[:TOP].tolist() if values[k] > 0]
        return [
            {
                "file": self.frames[k].file,
                "line": self.frames[k].line,
                "function": self.frames[k].function,
                "alloc_bytes": int(self.sums["alloc_bytes"][k]),
                "alloc_count": int(self.sums["alloc_count"][k]),
                "peak_bytes": int(self.sums["peak_bytes"][k]),
            }
            for k in ranked
        ]

    def modules(self) -> list[dict[str, Any]]:
        modules: dict[str, dict[str, Any]] = {}
        kinds: dict[str, tuple[str, str]] = {}
        columns = {metric: self.sums[metric].tolist() for metric in _FIGURES}
        for k, frame in enumerate(self.frames):
            if frame.file not in kinds:
                kinds[frame.file] = (origins.module(frame.file), origins.kind(frame.file))
            name, kind = kinds[frame.file]
            entry = modules.setdefault(
                name, {"module": name, "kind": kind, **dict.fromkeys(_FIGURES, 0)}
            )
            for metric in _FIGURES:
                entry[metric] += columns[metric][k]
        ranked = [m for m in modules.values() if m["alloc_count"] or m["alloc_bytes"]]
        return sorted(ranked, key=lambda m: (-m["alloc_bytes"], m["module"]))


def build(profile: Profile) -> dict[str, Any]:
    values = profile.stats.values
    total = {metric: int(values[:, i].sum()) for i, metric in enumerate(measures.COLUMNS)}
    thread_ids = sorted(set(profile.stats.thread.tolist()) | set(profile.threads))
    threads: list[dict[str, Any]] = [
        {
            "id": t,
            "name": profile.threads.get(t, ""),
            **_figures(profile, profile.stats.thread == t),
        }
        for t in thread_ids
    ]
    threads.sort(key=lambda t: (-t["alloc_bytes"], t["id"]))
    lines = _Lines(profile)
    return {
        "schema": SCHEMA,
        "capture": capture_fields(profile),
        "totals": {
            **totals_fields(profile),
            "peak_count": total["peak_count"],
            "leak_count": total["leak_count"],
            "temp_count": total["temp_count"],
            "temp_bytes": total["temp_bytes"],
        },
        "size_histogram": sizes.histogram(profile),
        "size_histogram_estimated": sizes.estimated(profile),
        "allocators": sizes.allocators(profile),
        "domains": {
            name: _figures(profile, profile.stats.domain == d) for d, name in enumerate(DOMAINS)
        },
        "top_by_size": lines.top("alloc_bytes"),
        "top_by_count": lines.top("alloc_count"),
        "threads": threads,
        "modules": lines.modules(),
    }


def _allocator_rows(allocators: list[dict[str, Any]], total_bytes: int) -> list[list[str]]:
    return [
        [
            a["label"],
            f"{a['count']:,}",
            format_bytes(a["bytes"]),
            f"{100 * a['bytes'] / total_bytes:.1f}%" if total_bytes else "",
        ]
        for a in allocators
    ]


# One table of the text report: title, headers, rows, which columns are right-aligned.
Section = tuple[str, list[str], list[list[str]], list[bool]]


def render(profile: Profile, *, boxed: bool = False, width: int | None = None) -> str:
    data = build(profile)
    out = [terminal.key_values(_summary_pairs(data), width)]
    for section in _sections(data):
        out.append("")
        if isinstance(section, str):
            out.append(terminal.wrap(section, width))
        else:
            title, headers, rows, right = section
            out.append(
                terminal.table(headers, rows, right=right, boxed=boxed, title=title, width=width)
            )
    return "\n".join(out)


def _live_at_exit(totals: dict[str, Any]) -> str:
    """`1.0 MiB in 100 (768.0 KiB still referenced, 256.0 KiB lost)`; the split when known."""
    live = f"{format_bytes(totals['leak_bytes'])} in {totals['leak_count']:,}"
    if totals["referenced_bytes"] is None:
        return live
    return (
        f"{live} ({format_bytes(totals['referenced_bytes'])} still referenced,"
        f" {format_bytes(totals['lost_bytes'])} lost)"
    )


def _summary_pairs(data: dict[str, Any]) -> list[tuple[str, str]]:
    totals = data["totals"]
    return [
        ("Command", " ".join(data["capture"]["argv"]) or "?"),
        ("Peak memory", f"{format_bytes(totals['peak_bytes'])} at {totals['peak_s']:.2f} s"),
        (
            "Total allocated",
            f"{format_bytes(totals['alloc_bytes'])} in {totals['alloc_count']:,}",
        ),
        ("Live at exit", _live_at_exit(totals)),
        ("Temporary", f"{format_bytes(totals['temp_bytes'])} in {totals['temp_count']:,}"),
        ("Peak RSS", format_bytes(totals["rss_peak"])),
        ("Duration", f"{data['capture']['duration_s']:.2f} s"),
    ]


def _sections(data: dict[str, Any]) -> list[Section | str]:
    """The report's tables in order; a plain string is a note shown instead of a table."""
    allocators: Section | str = (
        "Allocators: not counted in this capture (made by an older memlens)"
        if data["allocators"] is None
        else (
            "Allocators",
            ["allocator", "allocations", "allocated", "share"],
            _allocator_rows(data["allocators"], data["totals"]["alloc_bytes"]),
            [False, True, True, True],
        )
    )
    return [
        _sizes_section(data),
        allocators,
        _domains_section(data),
        _top_section(data, "top_by_size", "Top lines by bytes"),
        _top_section(data, "top_by_count", "Top lines by count"),
        _threads_section(data),
        _modules_section(data),
    ]


def _sizes_section(data: dict[str, Any]) -> Section:
    histogram = data["size_histogram"]
    biggest = max((b["count"] for b in histogram), default=0)
    return (
        "Allocation sizes, ESTIMATED from the mean size of each line's allocations\n"
        "(this capture does not count sizes: one big buffer among small ones is misplaced)"
        if data["size_histogram_estimated"]
        else "Allocation sizes (every allocation, counted exactly)",
        ["size", "count", "bytes", ""],
        [
            [
                sizes.bucket_label(b),
                f"{b['count']:,}",
                format_bytes(b["bytes"]),
                "█" * max(1, round(30 * b["count"] / biggest)) if biggest else "",
            ]
            for b in histogram
        ],
        [False, True, True, False],
    )


def _domains_section(data: dict[str, Any]) -> Section:
    return (
        "Python objects vs native vs mmap",
        ["domain", "allocations", "allocated", "at peak", "leaked"],
        [
            [
                name,
                f"{d['alloc_count']:,}",
                format_bytes(d["alloc_bytes"]),
                format_bytes(d["peak_bytes"]),
                format_bytes(d["leak_bytes"]),
            ]
            for name, d in data["domains"].items()
        ],
        [False, True, True, True, True],
    )


def _top_section(data: dict[str, Any], key: str, title: str) -> Section:
    return (
        f"{title} allocated (self: by the line itself)",
        ["allocated", "count", "location", "function"],
        [
            [
                format_bytes(e["alloc_bytes"]),
                f"{e['alloc_count']:,}",
                terminal.location(e["file"], e["line"]),
                e["function"],
            ]
            for e in data[key]
        ],
        [True, True, False, False],
    )


def _threads_section(data: dict[str, Any]) -> Section:
    return (
        "Threads",
        ["thread", "name", "allocations", "allocated", "at peak", "leaked"],
        [
            [
                str(t["id"]),
                t["name"],
                f"{t['alloc_count']:,}",
                format_bytes(t["alloc_bytes"]),
                format_bytes(t["peak_bytes"]),
                format_bytes(t["leak_bytes"]),
            ]
            for t in data["threads"]
        ],
        [True, False, True, True, True, True],
    )


def _modules_section(data: dict[str, Any]) -> Section:
    return (
        "Modules (self: by the innermost frame)",
        ["module", "kind", "allocations", "allocated", "at peak"],
        [
            [
                terminal.path(m["module"]),
                m["kind"],
                f"{m['alloc_count']:,}",
                format_bytes(m["alloc_bytes"]),
                format_bytes(m["peak_bytes"]),
            ]
            for m in data["modules"][:TOP]
        ],
        [False, False, True, True, True],
    )
