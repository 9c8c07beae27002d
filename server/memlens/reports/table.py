"""One row per source line that allocated: bytes and count charged to the line itself (its own
allocations, live at the peak by default, or over the run, leaked, temporary), its share of the
whole, and the inclusive bytes (with callees), like Memray's table but per line."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from memlens.model import METRICS, Profile
from memlens.reports import per_line, terminal
from memlens.units import format_bytes

# what the user asks for -> (bytes metric, count metric, what the share is of)
KINDS = {
    "peak": ("peak_bytes", "peak_count", "the peak"),
    "total": ("alloc_bytes", "alloc_count", "all allocations"),
    "leaks": ("leak_bytes", "leak_count", "leaked memory"),
    "temporary": ("temp_bytes", "temp_count", "temporary allocations"),
}
COLUMNS = ("bytes", "count", "share", "inclusive", "location", "function")
DEFAULT_SORT = "bytes"
DEFAULT_LIMIT = 50  # rows shown on a terminal unless asked (`--limit 0`: all)
NO_PYTHON_FRAME = "(no Python frame)"


@dataclass(frozen=True)
class Row:
    bytes: int  # the line's own allocations
    count: int
    share: float  # of the whole, 0..1
    inclusive: int  # with the allocations of the functions it calls
    file: str
    line: int
    function: str

    @property
    def location(self) -> str:
        return f"{self.file}:{self.line}" if self.line else self.file

    @property
    def shown_location(self) -> str:
        """The location relative to the working directory, when under it."""
        return terminal.location(self.file, self.line)


def build(
    profile: Profile, kind: str = "peak", sort: str = DEFAULT_SORT, limit: int | None = None
) -> list[Row]:
    """The rows, sorted; numeric columns biggest first, text columns A to Z."""
    if kind not in KINDS:
        raise ValueError(f"unknown table kind {kind!r}: one of {', '.join(KINDS)}")
    if sort not in COLUMNS:
        raise ValueError(f"unknown sort column {sort!r}: one of {', '.join(COLUMNS)}")
    metric, count_metric, _ = KINDS[kind]
    node_key, frames = per_line.node_lines(profile)
    own = per_line.self_sums(profile, (metric, count_metric), node_key, len(frames))
    inclusive = per_line.inclusive_sums(profile, (metric,), node_key, len(frames))[metric]
    own_bytes, own_count = own[metric].tolist(), own[count_metric].tolist()
    whole = sum(own_bytes) + _no_python_frame(profile, metric)
    rows = [
        Row(
            own_bytes[k],
            own_count[k],
            own_bytes[k] / whole if whole else 0.0,
            int(inclusive[k]),
            frame.file,
            frame.line,
            frame.function,
        )
        for k, frame in enumerate(frames)
        if own_bytes[k] or own_count[k]
    ]
    orphan = _no_python_frame(profile, metric)
    if orphan:  # native threads or interpreter start-up: shown so the shares add up
        count = _no_python_frame(profile, count_metric)
        rows.append(Row(orphan, count, orphan / whole, orphan, NO_PYTHON_FRAME, 0, ""))
    rows.sort(key=lambda r: (r.file, r.line))
    if sort in ("location", "function"):
        rows.sort(key=lambda r: getattr(r, sort))
    else:
        rows.sort(key=lambda r: getattr(r, sort), reverse=True)
    return rows if limit is None else rows[:limit]


def _no_python_frame(profile: Profile, metric: str) -> int:
    mask = profile.stats.stack < 0
    return int(profile.stats.values[mask, METRICS.index(metric)].sum())


def as_dicts(rows: list[Row]) -> list[dict[str, Any]]:
    return [
        {
            "bytes": r.bytes,
            "count": r.count,
            "share": r.share,
            "inclusive": r.inclusive,
            "file": r.file,
            "line": r.line,
            "function": r.function,
        }
        for r in rows
    ]


def render(
    profile: Profile,
    kind: str = "peak",
    sort: str = DEFAULT_SORT,
    limit: int | None = DEFAULT_LIMIT,
    *,
    boxed: bool = False,
    width: int | None = None,
) -> str:
    """The rows as text; at most `limit` (None: all), with a line saying how many were left out."""
    rows = build(profile, kind, sort)
    _, _, whole = KINDS[kind]
    if not rows:
        return f"No allocations in {whole}."
    shown = rows if limit is None else rows[:limit]
    text = terminal.table(
        ["bytes", "count", "share", "inclusive", "location", "function"],
        [
            [
                format_bytes(r.bytes),
                f"{r.count:,}",
                f"{r.share:.1%}",
                format_bytes(r.inclusive),
                r.shown_location,
                r.function,
            ]
            for r in shown
        ],
        right=[True, True, True, True, False, False],
        boxed=boxed,
        width=width,
        title=f"Lines by their own allocations in {whole} (inclusive: with callees)",
    )
    if len(shown) < len(rows):
        text += f"\n... {len(rows) - len(shown):,} more rows (--limit N, or --limit 0 for all)"
    return text
