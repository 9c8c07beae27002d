"""The whole per-line index as JSON, for other tools and CI. Stable schema:

    {
      "schema": "memlens-lines/1",
      "capture": {"complete", "argv", "pid", "python_version", "python_allocators",
                  "exit_code", "duration_s"},
      "totals": {"alloc_count", "alloc_bytes", "peak_bytes", "peak_s", "leak_bytes",
                 "referenced_bytes", "lost_bytes", "referenced_complete", "rss_peak"},
      "size_histogram": [{"min_bytes", "max_bytes", "count", "bytes", "by_domain"}],
      "size_histogram_estimated": bool,
      "allocators": [{"name", "label", "count", "bytes"}] | null,
      "lines": [{"file", "line", "function", "inclusive": USAGE, "self": USAGE}],
      "functions": [{"file", "function", "first_line", "inclusive": USAGE, "self": USAGE}],
      "snapshots": [{"label", "t_ms", "complete", "types": [TYPE]}]
    }
    USAGE = {"alloc_count", "alloc_bytes", "peak_count", "peak_bytes", "leak_count",
             "leak_bytes", "temp_count", "temp_bytes", "ref_count", "ref_bytes",
             "peak_bytes_by_domain": {"python", "native", "mmap"},
             "alloc_bytes_by_domain": {"python", "native", "mmap"}}

    TYPE = {"type", "count", "bytes",
            "sites": [{"file", "line", "function", "count", "bytes"}], "holder": str | null}

leak_* is memory live at exit; ref_* the part of it still referenced at exit (reachable from
module globals, class attributes, running frames or C globals), the rest is lost; in totals,
referenced_bytes and lost_bytes are null when the capture has no exit snapshot to split it
(referenced_complete false: the marking ran out of time, referenced is a floor).
Lines and functions are sorted by file, then line. Snapshots are in the order taken ("exit" is
the one at the end); their types most bytes first, each type's sites most bytes first, and the
holder the chain of references that keeps the type's biggest held site alive (reports/types.py).
Inclusive and self as in DESIGN.md
("Per-line numbers"). The histogram and the allocators as in reports/sizes.py (the same as
`memlens stats --json`).
"""

from __future__ import annotations

from typing import Any

from memlens.model import Profile, Usage
from memlens.reports import sizes, types

SCHEMA = "memlens-lines/1"


def usage(u: Usage) -> dict[str, Any]:
    # one call per line and function (10,000s in a big capture): plain indexing, no getattr
    python, native, mmap = u.peak_bytes_by_domain
    alloc_python, alloc_native, alloc_mmap = u.alloc_bytes_by_domain
    return {
        "alloc_count": u.alloc_count,
        "alloc_bytes": u.alloc_bytes,
        "peak_count": u.peak_count,
        "peak_bytes": u.peak_bytes,
        "leak_count": u.leak_count,
        "leak_bytes": u.leak_bytes,
        "temp_count": u.temp_count,
        "temp_bytes": u.temp_bytes,
        "ref_count": u.ref_count,
        "ref_bytes": u.ref_bytes,
        "peak_bytes_by_domain": {"python": python, "native": native, "mmap": mmap},
        "alloc_bytes_by_domain": {
            "python": alloc_python,
            "native": alloc_native,
            "mmap": alloc_mmap,
        },
    }


def capture_fields(profile: Profile) -> dict[str, Any]:
    """What run a capture is of; shared by the JSON schemas (json and stats --json)."""
    meta = profile.meta
    return {
        "complete": profile.complete,
        "argv": list(meta.argv),
        "pid": meta.pid,
        "python_version": meta.python_version,
        "python_allocators": meta.python_allocators,
        "exit_code": meta.exit_code,
        "duration_s": round(meta.duration_s, 6),
    }


def totals_fields(profile: Profile) -> dict[str, Any]:
    """The capture's totals, as every JSON report gives them."""
    totals = profile.totals
    return {
        "alloc_count": totals.alloc_count,
        "alloc_bytes": totals.alloc_bytes,
        "peak_bytes": totals.peak_bytes,
        "peak_s": round(totals.peak_ns / 1e9, 6),
        "leak_bytes": totals.leak_bytes,
        **profile.exit_split(),
        "rss_peak": totals.rss_peak,
    }


def build(profile: Profile) -> dict[str, Any]:
    index = profile.lines
    return {
        "schema": SCHEMA,
        "capture": capture_fields(profile),
        "totals": totals_fields(profile),
        "size_histogram": sizes.histogram(profile),
        "size_histogram_estimated": sizes.estimated(profile),
        "allocators": sizes.allocators(profile),
        "lines": [
            {
                "file": s.file,
                "line": s.line,
                "function": s.function,
                "inclusive": usage(s.inclusive),
                "self": usage(s.self),
            }
            for _, s in sorted(index.by_line.items())
        ],
        "functions": [
            {
                "file": s.file,
                "function": s.function,
                "first_line": s.first_line,
                "inclusive": usage(s.inclusive),
                "self": usage(s.self),
            }
            for _, s in sorted(
                index.by_function.items(), key=lambda kv: (kv[0][0], kv[0][2], kv[0][1])
            )
        ],
        "snapshots": [
            {
                "label": snapshot.label,
                "t_ms": snapshot.t_ms,
                "complete": snapshot.complete,
                "types": types.as_dicts(types.by_type(profile, snapshot)),
            }
            for snapshot in profile.snapshots
        ],
    }
