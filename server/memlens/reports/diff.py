"""What changed between two runs, per source line: the memory-regression view.

Each line's own numbers (as `memlens table`: the allocations whose innermost frame is the line)
at the peak, over the run and leaked, in the old run and the new one, with the change. Lines are
keyed by (file, line), so two runs of one script line up; rows are sorted by the biggest change
(peak first, then total, then leaked). The object side of the regression view (per type, per site)
is in reports/types.py; `memlens diff` puts the two together.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from memlens.model import METRICS, Profile
from memlens.reports import per_line, terminal
from memlens.units import format_bytes

MEASURES = ("peak_bytes", "alloc_bytes", "leak_bytes")  # named as model.METRICS names them
HEADINGS = {"peak_bytes": "peak", "alloc_bytes": "total", "leak_bytes": "leaked"}
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


def own_by_line(profile: Profile) -> dict[tuple[str, int], tuple[str, dict[str, int]]]:
    """(file, line) -> (function, MEASURES -> the line's own bytes), zero lines left out; the
    allocations with no Python frame under (NO_PYTHON_FRAME, 0)."""
    node_key, frames = per_line.node_lines(profile)
    sums = per_line.self_sums(profile, MEASURES, node_key, len(frames))
    columns = {m: sums[m].tolist() for m in MEASURES}
    result: dict[tuple[str, int], tuple[str, dict[str, int]]] = {}
    for k, frame in enumerate(frames):
        values = {m: int(columns[m][k]) for m in MEASURES}
        if any(values.values()):
            result[(frame.file, frame.line)] = (frame.function, values)
    orphan = profile.stats.stack < 0
    values = {m: int(profile.stats.values[orphan, METRICS.index(m)].sum()) for m in MEASURES}
    if any(values.values()):
        result[(NO_PYTHON_FRAME, 0)] = ("", values)
    return result


def by_line(old: Profile, new: Profile) -> list[LineChange]:
    """Every line with memory in either run, biggest change first (ties: file, line)."""
    before, after = own_by_line(old), own_by_line(new)
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
    for measure in MEASURES:
        headers += [HEADINGS[measure], "change"]
    rows = []
    for c in shown:
        cells: list[str] = []
        for measure in MEASURES:
            cells += [format_bytes(c.new[measure]), signed(c.change(measure))]
        rows.append([*cells, c.location, c.function])
    text = terminal.table(
        [*headers, "location", "function"],
        rows,
        right=[True] * len(headers) + [False, False],
        boxed=boxed,
        width=width,
        title="Lines by the change of their own memory (new run, and change since the old one)",
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
