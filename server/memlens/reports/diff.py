"""What changed between two runs, per source line: the memory-regression view.

Each line's self numbers (as `memlens table`: the allocations whose innermost frame is the line)
at the peak, over the run and leaked, in the old run and the new one, with the change. Lines are
keyed by (file, line), so two runs of one script line up; rows are sorted by the biggest change
(peak first, then total, then leaked). The object side of the regression view (per type, per site)
is in reports/types.py; `memlens diff` puts the two together.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from memlens import measures
from memlens.model import SELF, Profile
from memlens.reports import terminal, types
from memlens.snapshots import Snapshot
from memlens.units import format_bytes

# the measures compared, by their bytes' names (measures.COLUMNS)
COMPARED = tuple(measures.named(name) for name in ("peak", "total", "leaks"))
MEASURES = tuple(m.metric for m in COMPARED)
DEFAULT_LIMIT = 30  # rows shown on a terminal unless asked (`--limit 0`: all)
NO_PYTHON_FRAME = "(no Python frame)"


@dataclass(frozen=True)
class LineChange:
    file: str
    line: int  # 0 for allocations with no Python frame
    function: str
    old: dict[str, int]  # MEASURES -> bytes in the old run
    new: dict[str, int]

    def change(self, measure: str) -> int:
        return self.new[measure] - self.old[measure]

    @property
    def location(self) -> str:
        return terminal.location(self.file, self.line)


def self_by_line(profile: Profile) -> dict[tuple[str, int], tuple[str, dict[str, int]]]:
    """(file, line) -> (function, MEASURES -> the line's self bytes), zero lines left out; the
    allocations with no Python frame under (NO_PYTHON_FRAME, 0)."""
    _, frames = profile.line_keys
    sums = profile.line_totals(SELF, MEASURES)
    columns = {m: sums[:, i].tolist() for i, m in enumerate(MEASURES)}
    result: dict[tuple[str, int], tuple[str, dict[str, int]]] = {}
    for k, frame in enumerate(frames):
        values = {m: int(columns[m][k]) for m in MEASURES}
        if any(values.values()):
            result[(frame.file, frame.line)] = (frame.function, values)
    orphan = profile.stats.stack < 0
    values = {
        m: int(profile.stats.values[orphan, measures.COLUMNS.index(m)].sum()) for m in MEASURES
    }
    if any(values.values()):
        result[(NO_PYTHON_FRAME, 0)] = ("", values)
    return result


def by_line(old: Profile, new: Profile) -> list[LineChange]:
    """Every line with memory in either run, biggest change first (ties: file, line)."""
    before, after = self_by_line(old), self_by_line(new)
    zero = dict.fromkeys(MEASURES, 0)
    rows = [
        LineChange(
            file,
            line,
            (after.get((file, line)) or before[(file, line)])[0],
            before.get((file, line), ("", zero))[1],
            after.get((file, line), ("", zero))[1],
        )
        for file, line in sorted(before.keys() | after.keys())
    ]
    rows = [r for r in rows if any(r.change(m) for m in MEASURES)]
    rows.sort(key=lambda r: tuple(-abs(r.change(m)) for m in MEASURES))
    return rows


def signed(size: int) -> str:
    """A change in bytes: `+12.0 MiB`, `-512 B`, `0 B`."""
    return ("+" if size > 0 else "") + format_bytes(size)


def script(profile: Profile) -> str:
    """What a run ran, for saying which scripts two captures are of."""
    argv = profile.meta.argv
    return next((a for a in argv if a.endswith(".py")), " ".join(argv) or "(unknown)")


def runs_heading(old: Profile, new: Profile) -> list[str]:
    """The lines above a diff of two runs: their peaks and, when so, that they ran other scripts."""
    first, second = old.totals, new.totals
    lines = [
        f"peak {format_bytes(first.peak_bytes)} -> {format_bytes(second.peak_bytes)}"
        f" ({signed(second.peak_bytes - first.peak_bytes)}); leaked"
        f" {format_bytes(first.leak_bytes)} -> {format_bytes(second.leak_bytes)}"
        f" ({signed(second.leak_bytes - first.leak_bytes)})"
    ]
    if script(old) != script(new):
        lines.append(
            f"note: the runs are of different scripts ({script(old)}, {script(new)});"
            " lines are matched by file and line"
        )
    return lines


def render_lines(
    changes: list[LineChange],
    limit: int | None = DEFAULT_LIMIT,
    *,
    boxed: bool = False,
    width: int | None = None,
) -> str:
    """The per-line changes as a table, at most `limit` rows (None: all)."""
    if not changes:
        return "No line's memory changed."
    shown = changes if limit is None else changes[:limit]
    headers: list[str] = []
    for compared in COMPARED:
        headers += [compared.heading, "change"]
    rows = []
    for c in shown:
        cells: list[str] = []
        for measure in MEASURES:
            cells += [format_bytes(c.new[measure]), signed(c.change(measure))]
        rows.append([*cells, c.location])
    text = terminal.table(
        [*headers, "location"],
        rows,
        right=[True] * len(headers) + [False],
        boxed=boxed,
        width=width,
        title="Lines by the change of their self memory (new run, and change since the old one)",
    )
    if len(shown) < len(changes):
        text += f"\n... {len(changes) - len(shown):,} more rows (--limit N, or --limit 0 for all)"
    return text


def line_dicts(changes: list[LineChange]) -> list[dict[str, Any]]:
    return [
        {
            "file": c.file,
            "line": c.line,
            "function": c.function,
            "old": dict(c.old),
            "new": dict(c.new),
            "change": {m: c.change(m) for m in MEASURES},
        }
        for c in changes
    ]


@dataclass(frozen=True)
class ObjectChange:
    """Live objects of one type (site None) or of one type at one site, before and after."""

    type: str
    site: tuple[str, int, str] | None  # (file, line, function)
    old: tuple[int, int]  # (count, bytes)
    new: tuple[int, int]

    @property
    def count(self) -> int:
        return self.new[0] - self.old[0]

    @property
    def bytes(self) -> int:
        return self.new[1] - self.old[1]

    @property
    def location(self) -> str:
        return terminal.location(*self.site[:2]) if self.site else ""


def by_object(
    old: Profile, before: Snapshot, new: Profile, after: Snapshot
) -> tuple[list[ObjectChange], list[ObjectChange]]:
    """(per type, per type and site) changes of live objects between two snapshots, of one run
    or of two; unchanged rows left out, biggest change of bytes first (then of objects)."""
    first, second = types.sites_by_type(old, before), types.sites_by_type(new, after)
    per_type, per_site = [], []
    for name in sorted(first.keys() | second.keys()):
        was, now = first.get(name, {}), second.get(name, {})
        total_old, total_new = _sum(was.values()), _sum(now.values())
        per_type.append(ObjectChange(name, None, total_old, total_new))
        for site in sorted(was.keys() | now.keys()):
            (old_count, old_bytes), (new_count, new_bytes) = (
                was.get(site, (0, 0)),
                now.get(site, (0, 0)),
            )
            per_site.append(
                ObjectChange(name, site, (old_count, old_bytes), (new_count, new_bytes))
            )
    return _ranked(per_type), _ranked(per_site)


def _sum(sums: Iterable[list[int]]) -> tuple[int, int]:
    count = size = 0
    for c, b in sums:
        count, size = count + c, size + b
    return count, size


def _ranked(changes: list[ObjectChange]) -> list[ObjectChange]:
    moved = [c for c in changes if c.count or c.bytes]
    return sorted(moved, key=lambda c: (-abs(c.bytes), -abs(c.count)))  # stable: by name, site


def render_objects(
    per_type: list[ObjectChange],
    per_site: list[ObjectChange],
    limit: int | None = DEFAULT_LIMIT,
    *,
    boxed: bool = False,
    width: int | None = None,
) -> str:
    """Two tables: the change per type, and per type and site (the line that made them)."""
    if not per_type:
        return "No live objects changed."
    parts = []
    for title, changes in (
        ("Live Python objects by type: new, and change", per_type),
        ("... and by the line that made them", per_site),
    ):
        shown = changes if limit is None else changes[:limit]
        # one text column (rich squeezes the narrower of two): "str at app.py:14" by site
        parts.append(
            terminal.table(
                [
                    "objects",
                    "change",
                    "bytes",
                    "change",
                    "type" + (" at site" if changes is per_site else ""),
                ],
                [
                    [
                        f"{c.new[0]:,}",
                        f"{c.count:+,}",
                        format_bytes(c.new[1]),
                        signed(c.bytes),
                        f"{c.type} at {c.location}" if c.site else c.type,
                    ]  # fmt: skip
                    for c in shown
                ],
                right=[True, True, True, True, False],
                boxed=boxed,
                width=width,
                title=title,
            )
        )
        if len(shown) < len(changes):
            parts[-1] += (
                f"\n... {len(changes) - len(shown):,} more rows (--limit N, or --limit 0 for all)"
            )
    return "\n\n".join(parts)


def object_dicts(changes: list[ObjectChange]) -> list[dict[str, Any]]:
    result = []
    for c in changes:
        row: dict[str, Any] = {"type": c.type}
        if c.site:
            row |= {"file": c.site[0], "line": c.site[1], "function": c.site[2]}
        row |= {
            "old": {"count": c.old[0], "bytes": c.old[1]},
            "new": {"count": c.new[0], "bytes": c.new[1]},
            "change": {"count": c.count, "bytes": c.bytes},
        }
        result.append(row)
    return result
