"""What the live memory is made of, and who holds it: Python objects per type at a snapshot (the
one at exit, or one the program took with memlens.snapshot(label)), with the lines that made
them (sites) and the chain of references that keeps the biggest of them alive (holder).

A site is the innermost frame of the objects' allocating stack, as `memlens table` charges a
line. The change between two snapshots (of one run or of two runs) is keyed by type and by
(type, site), so it lines up across runs of one script.
"""

from __future__ import annotations

import textwrap
import weakref
from dataclasses import dataclass
from typing import Any

from memlens.model import Profile
from memlens.reports import sources, terminal
from memlens.snapshots import Holder, ObjectGroup, Snapshot
from memlens.units import format_bytes

EXIT = "exit"  # the label of the snapshot taken when tracking stops
PEAK = "peak"
# A census at every new high-watermark would cost a snapshot each time the heap grows.
NOT_AT_PEAK = "types are recorded at snapshots and at exit, not at the run's peak"
DEFAULT_LIMIT = 30  # types shown on a terminal unless asked (`--limit 0`: all)
SITES_SHOWN = 3  # sites per type on a terminal
NO_PYTHON_FRAME = "(no Python frame)"
SITES_HEADER = "sites (objects, bytes); holder"


class SnapshotError(ValueError):
    """A snapshot that is not in the capture; the message names the ones there are."""


@dataclass(frozen=True)
class Site:
    file: str
    line: int  # 0: no Python frame
    function: str
    count: int
    bytes: int

    @property
    def location(self) -> str:
        return terminal.location(self.file, self.line)


@dataclass(frozen=True)
class TypeRow:
    type: str
    count: int
    bytes: int
    sites: tuple[Site, ...]  # biggest first
    holder: str | None  # the holder of the type's biggest held site; None when none was found


def labels(profile: Profile) -> list[str]:
    return [s.label for s in profile.snapshots]


def find(profile: Profile, label: str = EXIT) -> Snapshot | None:
    """The snapshot with this label (the last one of that name), if there is one."""
    return next((s for s in reversed(profile.snapshots) if s.label == label), None)


def snapshot_at(profile: Profile, label: str = EXIT) -> Snapshot:
    """The snapshot with this label (the last one of that name), or SnapshotError saying which
    there are."""
    found = find(profile, label)
    if found is not None:
        return found
    if not profile.snapshots:
        raise SnapshotError(
            "the capture has no snapshots of objects (a run made before they were recorded,"
            " or one that stopped before its first)"
        )
    there = ", ".join(repr(name) for name in dict.fromkeys(labels(profile)))
    if label == PEAK:
        raise SnapshotError(f"{NOT_AT_PEAK}; there are: {there}")
    raise SnapshotError(f"no snapshot {label!r} in the capture; there are: {there}")


def site_of(profile: Profile, stack: int) -> tuple[str, int, str]:
    """(file, line, function) of the innermost frame of a stack; NO_PYTHON_FRAME for -1."""
    if stack < 0 or stack >= len(profile.stack_parent):
        return (NO_PYTHON_FRAME, 0, "")
    frame = profile.frames[int(profile.stack_frame[stack])]
    return (frame.file, frame.line, frame.function)


def sites_by_type(
    profile: Profile, snapshot: Snapshot
) -> dict[str, dict[tuple[str, int, str], list[int]]]:
    """type -> (file, line, function) -> [count, bytes], over the snapshot's object groups."""
    result: dict[str, dict[tuple[str, int, str], list[int]]] = {}
    for group in snapshot.objects:
        sums = result.setdefault(group.type, {}).setdefault(site_of(profile, group.stack), [0, 0])
        sums[0] += group.count
        sums[1] += group.bytes
    return result


def by_type(profile: Profile, snapshot: Snapshot) -> list[TypeRow]:
    """One row per type, most bytes first (ties: more objects, then the type's name)."""
    held: dict[str, Holder] = {}
    for h in snapshot.holders:  # the holder of each type's biggest held group
        if h.type not in held or h.bytes > held[h.type].bytes:
            held[h.type] = h
    rows = []
    for name, sites in sites_by_type(profile, snapshot).items():
        ranked = sorted(
            (Site(f, line, fn, c, b) for (f, line, fn), (c, b) in sites.items()),
            key=lambda s: (-s.bytes, -s.count, s.file, s.line),
        )
        holder = held.get(name)
        rows.append(
            TypeRow(
                name,
                sum(s.count for s in ranked),
                sum(s.bytes for s in ranked),
                tuple(ranked),
                holder.text if holder else None,
            )
        )
    rows.sort(key=lambda r: (-r.bytes, -r.count, r.type))
    return rows


Line = tuple[str, int]  # (file, 1-based line)


@dataclass(frozen=True)
class _LineIndex:
    """One snapshot's object groups and holders by every line their stacks pass through."""

    snapshot: Snapshot
    groups: dict[Line, list[ObjectGroup]]
    holders: dict[Line, list[Holder]]


# per profile, per snapshot (by identity: hashing a snapshot hashes all its groups): the index
# that hover and diagnostics ask about many lines of
_INDEXES: weakref.WeakKeyDictionary[Profile, dict[int, _LineIndex]] = weakref.WeakKeyDictionary()


def _index(profile: Profile, snapshot: Snapshot) -> _LineIndex:
    known = _INDEXES.setdefault(profile, {})
    index = known.get(id(snapshot))
    if index is not None and index.snapshot is snapshot:
        return index
    lines_of: dict[int, frozenset[Line]] = {-1: frozenset()}  # per trie node, memoised

    def lines(stack: int) -> frozenset[Line]:
        pending = []
        node = stack if 0 <= stack < len(profile.stack_parent) else -1
        while node not in lines_of:  # up to the nearest known ancestor
            pending.append(node)
            node = int(profile.stack_parent[node])
        found = lines_of[node]
        for node in reversed(pending):
            frame = profile.frames[int(profile.stack_frame[node])]
            found = lines_of[node] = found | {(frame.file, frame.line)}
        return found

    groups: dict[Line, list[ObjectGroup]] = {}
    for group in snapshot.objects:
        for line in lines(group.stack):
            groups.setdefault(line, []).append(group)
    holders: dict[Line, list[Holder]] = {}
    for holder in snapshot.holders:
        for line in lines(holder.stack):
            holders.setdefault(line, []).append(holder)
    index = known[id(snapshot)] = _LineIndex(snapshot, groups, holders)
    return index


def at_line(
    profile: Profile, snapshot: Snapshot, file: str, line: int
) -> list[tuple[str, int, int]]:
    """(type, count, bytes) of the snapshot's objects whose stack passes through the line (the
    line made them, or a function it called did), most bytes first."""
    sums: dict[str, list[int]] = {}
    for group in _index(profile, snapshot).groups.get((file, line), []):
        row = sums.setdefault(group.type, [0, 0])
        row[0] += group.count
        row[1] += group.bytes
    return sorted(((t, c, b) for t, (c, b) in sums.items()), key=lambda r: (-r[2], -r[1], r[0]))


def holders_at_line(profile: Profile, snapshot: Snapshot, file: str, line: int) -> list[Holder]:
    """The holders of objects whose stack passes through the line, most bytes first."""
    found = _index(profile, snapshot).holders.get((file, line), [])
    return sorted(found, key=lambda h: -h.bytes)


def nearest_holder(holder: Holder) -> str:
    """The step nearest the objects, without its kind: `Cache.entries` of `Cache.entries (dict,
    10,000 items)`; for objects in an uncollected cycle, that they are."""
    if holder.root == "unreachable":
        return "an uncollected reference cycle"
    text = holder.steps[0].text if holder.steps else holder.root
    name, _, kind = text.rpartition(" (")
    return name if name and kind.endswith(")") else text


def as_dicts(rows: list[TypeRow]) -> list[dict[str, Any]]:
    """The JSON form (docs/design.md, "Objects by type"): one dict per type."""
    return [
        {
            "type": r.type,
            "count": r.count,
            "bytes": r.bytes,
            "sites": [
                {
                    "file": s.file,
                    "line": s.line,
                    "function": s.function,
                    "count": s.count,
                    "bytes": s.bytes,
                }  # fmt: skip
                for s in r.sites
            ],
            "holder": r.holder,
        }
        for r in rows
    ]


def heading(snapshot: Snapshot) -> str:
    when = "at exit" if snapshot.label == EXIT else f"at snapshot {snapshot.label!r}"
    text = f"Live Python objects {when} ({snapshot.t_ms / 1000:.2f} s in), by type"
    if not snapshot.complete:
        text += "\nnote: this snapshot is partial (its time bound ran out): counts are a floor"
    return text


def _site_text(site: Site, source: str) -> str:
    """`app.py:10 (10,000, 10.1 MiB): cache[i] = bytearray(1000)`."""
    text = f"{site.location} ({site.count:,}, {format_bytes(site.bytes)})"
    return f"{text}: {source}" if source else text


def render(
    profile: Profile,
    at: str = EXIT,
    limit: int | None = DEFAULT_LIMIT,
    *,
    boxed: bool = False,
    width: int | None = None,
) -> str:
    """The types as a table: at most `limit` (None: all), each with its top sites and holder."""
    snapshot = snapshot_at(profile, at)
    rows = by_type(profile, snapshot)
    if not rows:
        return heading(snapshot) + "\nNo live Python objects were recorded."
    shown = rows if limit is None else rows[:limit]
    counts = [f"{r.count:,}" for r in shown]
    sizes = [format_bytes(r.bytes) for r in shown]
    # the sites column gets the room the names and numbers leave, wrapped here so that rich never
    # has to squeeze a type's name
    borders = 3 * 4 + 1 if boxed else 2 * 3
    fixed = sum(
        max(map(len, column))
        for column in ([r.type for r in shown] + ["type"], counts + ["objects"], sizes + ["bytes"])
    )
    text_room = max(len(SITES_HEADER), (width or terminal.columns()) - fixed - borders)
    cells: list[list[str]] = []
    texts = sources.LineTexts()
    for r, count, size in zip(shown, counts, sizes, strict=True):
        # the type's row with its biggest site, then its other sites and its holder
        sites = [_site_text(s, texts.text(s.file, s.line)) for s in r.sites[:SITES_SHOWN]]
        more = len(r.sites) - SITES_SHOWN
        sites += [f"... {more:,} more sites"] if more > 0 else []
        if r.holder:
            sites.append(f"held by {r.holder}")
        lines = [
            part
            for site in sites
            for part in textwrap.wrap(site, text_room, subsequent_indent="  ")
        ]
        cells.append([r.type, count, size, lines[0]])
        cells += [["", "", "", line] for line in lines[1:]]
    text = terminal.table(
        ["type", "objects", "bytes", SITES_HEADER],
        cells,
        right=[False, True, True, False],
        boxed=boxed,
        width=width,
        title=heading(snapshot),
    )
    if len(shown) < len(rows):
        text += f"\n... {len(rows) - len(shown):,} more types (--limit N, or --limit 0 for all)"
    return text
