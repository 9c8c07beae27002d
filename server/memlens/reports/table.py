"""One row per source line that allocated: self bytes and count (allocated by the line itself,
in one measure: live at the peak by default, or over the run, live at exit (still referenced
or lost), temporary, freed), its
share of the whole, and the inclusive bytes (with callees), like Memray's table but per line."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from memlens import measures
from memlens.model import INCLUSIVE, SELF, Profile
from memlens.reports import terminal
from memlens.units import format_bytes

COLUMNS = ("bytes", "count", "share", "inclusive", "location", "function")
DEFAULT_SORT = "bytes"
DEFAULT_LIMIT = 50  # rows shown on a terminal unless asked (`--limit 0`: all)
NO_PYTHON_FRAME = "(no Python frame)"


@dataclass(frozen=True)
class Row:
    bytes: int  # self: allocated by the line itself
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
    profile: Profile, measure: str = "peak", sort: str = DEFAULT_SORT, limit: int | None = None
) -> list[Row]:
    """The rows of one measure (measures.py, by name), sorted; numeric columns biggest first,
    text columns A to Z."""
    chosen = measures.named(measure)
    if sort not in COLUMNS:
        raise ValueError(f"unknown sort column {sort!r}: one of {', '.join(COLUMNS)}")
    metric, count_metric = chosen.metric, chosen.count
    _, frames = profile.line_keys
    self_view = profile.line_totals(SELF, (metric, count_metric))
    inclusive = profile.line_totals(INCLUSIVE, (metric,))[:, 0].tolist()
    self_bytes, self_count = self_view[:, 0].tolist(), self_view[:, 1].tolist()
    orphan = _no_python_frame(profile, metric)
    whole = sum(self_bytes) + orphan
    rows = [
        Row(
            self_bytes[k],
            self_count[k],
            self_bytes[k] / whole if whole else 0.0,
            inclusive[k],
            frame.file,
            frame.line,
            frame.function,
        )
        for k, frame in enumerate(frames)
        if self_bytes[k] or self_count[k]
    ]
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
    return int(measures.column(metric, profile.stats.values[mask]).sum())


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
    measure: str = "peak",
    sort: str = DEFAULT_SORT,
    limit: int | None = DEFAULT_LIMIT,
    *,
    boxed: bool = False,
    width: int | None = None,
) -> str:
    """The rows as text; at most `limit` (None: all), with a line saying how many were left out."""
    rows = build(profile, measure, sort)
    whole = measures.named(measure).whole
    if not rows:
        return f"No allocations in {whole}."
    shown = rows if limit is None else rows[:limit]
    text = terminal.table(
        ["self bytes", "self count", "share", "inclusive", "location", "function"],
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
        title=f"Lines by self allocations in {whole} (inclusive: with callees)",
    )
    if len(shown) < len(rows):
        text += f"\n... {len(rows) - len(shown):,} more rows (--limit N, or --limit 0 for all)"
    if measure in measures.EXIT_MEASURES:
        known = profile.referenced_at_exit is not None
        text += "\n" + (measures.EXIT_TERMS if known else measures.NOT_SPLIT)
    return text
