"""The loaded profile and its per-line index: what every report, the language server and the
pytest plugin read. Nothing here knows the file format (that is capture.py) or LSP.

Per-line numbers (docs/design.md, "Per-line numbers"): one attribution of the stacks to lines,
seen three ways (VIEWS), all computed here on the stack trie:
- *self*: stacks whose innermost Python frame is L;
- *inclusive*: stacks that pass through L, callees included (a stack passing L twice, as in
  recursion, counts once);
- *charged*: stacks whose innermost line of the user's code is L (origins.py says whose code a
  file is), so `np.zeros(...)` inside numpy is charged to the user's line that called it.
Functions are the same with (file, function, first line) in place of (file, line).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import NamedTuple, TypeVar

import numpy as np

from memlens import measures, origins
from memlens.snapshots import Snapshot

_K = TypeVar("_K")
_V = TypeVar("_V")

# Stats.values and the capture's `stats` table have the raw columns of measures.COLUMNS, in
# that order (measures.py says what each measure the user can ask for is made of).
DOMAINS = ("python", "native", "mmap")  # stats.domain 0, 1, 2
# Usage columns: the metrics, then peak bytes per domain, then allocated bytes per domain.
_PEAK_BY_DOMAIN = len(measures.COLUMNS)
_ALLOC_BY_DOMAIN = _PEAK_BY_DOMAIN + len(DOMAINS)
_COLUMNS = _ALLOC_BY_DOMAIN + len(DOMAINS)
assert _COLUMNS == 16  # Usage.from_row spells the columns out, for speed

SELF, INCLUSIVE, CHARGED = VIEWS = ("self", "inclusive", "charged")
UserCode = Callable[[str], bool]  # whether a frame's file is the user's code


def is_user_code(file: str) -> bool:
    """The default user-code test of the charged view: not a library's, not the import system's."""
    return origins.kind(file) == origins.USER


class Frame(NamedTuple):
    """One location of a Python stack: a line inside a function. A named tuple, not a frozen
    dataclass: a capture's frames are made in one go at load, ten times faster so."""

    function: str
    file: str
    line: int
    first_line: int  # the function's `def` line


@dataclass(frozen=True)
class Meta:
    argv: list[str]
    pid: int
    python_version: str
    platform: str
    memlens_version: str
    start_ns: int
    end_ns: int
    python_allocators: bool
    exit_code: int | None = None
    temporary_threshold: int = 1  # a block freed within this many allocations is temporary

    @property
    def duration_s(self) -> float:
        return max(0, self.end_ns - self.start_ns) / 1e9


@dataclass(frozen=True)
class Totals:
    alloc_count: int
    alloc_bytes: int
    peak_bytes: int  # the high-watermark of bytes live
    peak_ns: int  # when the high-watermark was reached, from the start of tracking
    leak_bytes: int  # still live when tracking stopped
    rss_peak: int


@dataclass(frozen=True)
class Timeline:
    """Heap and RSS sampled over the run; t_ms counts from the start of tracking."""

    t_ms: np.ndarray
    heap: np.ndarray
    rss: np.ndarray


@dataclass(frozen=True)
class Stats:
    """One row per (stack, thread, domain); values has the measures.COLUMNS columns."""

    stack: np.ndarray  # -1: no Python frame on the thread's stack
    thread: np.ndarray
    domain: np.ndarray
    values: np.ndarray  # shape (rows, len(measures.COLUMNS)), int64

    def __len__(self) -> int:
        return len(self.stack)


@dataclass(frozen=True)
class SizeHistogram:
    """Exact allocation sizes, counted by the tracker as each allocation was made: one entry per
    non-empty (domain, power-of-two bucket). Bucket k holds sizes in [2**k, 2**(k+1)); bucket -1
    holds 0-byte requests."""

    domain: np.ndarray
    bucket_log2: np.ndarray
    count: np.ndarray
    bytes: np.ndarray


@dataclass(frozen=True)
class AllocatorUse:
    """What one allocator (malloc, calloc, mmap, pyobject...) allocated over the run."""

    name: str
    count: int
    bytes: int


@dataclass(frozen=True)
class Usage:
    """Counts and bytes of one line, function or stack."""

    alloc_count: int = 0
    alloc_bytes: int = 0
    peak_count: int = 0
    peak_bytes: int = 0
    leak_count: int = 0
    leak_bytes: int = 0
    temp_count: int = 0
    temp_bytes: int = 0
    ref_count: int = 0  # of leak_*: still referenced at exit (the rest is lost)
    ref_bytes: int = 0
    peak_bytes_by_domain: tuple[int, int, int] = (0, 0, 0)  # python, native, mmap
    alloc_bytes_by_domain: tuple[int, int, int] = (0, 0, 0)

    @classmethod
    def from_row(cls, row: np.ndarray) -> Usage:
        v: list[int] = row.tolist()  # columns: measures.COLUMNS, peak by domain, alloc by domain
        return cls(
            v[0],
            v[1],
            v[2],
            v[3],
            v[4],
            v[5],
            v[6],
            v[7],
            v[8],
            v[9],
            (v[10], v[11], v[12]),
            (v[13], v[14], v[15]),
        )

    def get(self, metric: str) -> int:
        """A measure's bytes or count by name ("peak_bytes", "freed_count"): see measures.py."""
        return measures.value(metric, lambda raw: int(getattr(self, raw)))


@dataclass(frozen=True)
class LineStats:
    file: str
    line: int
    function: str  # the function this line belongs to
    inclusive: Usage
    self: Usage


@dataclass(frozen=True)
class FunctionStats:
    file: str
    function: str
    first_line: int
    inclusive: Usage
    self: Usage


@dataclass(frozen=True)
class StackUsage:
    """One distinct Python stack (summed over threads and domains) and what it allocated."""

    stack_id: int  # -1: allocations with no Python frame
    frames: tuple[Frame, ...]  # caller to callee: frames[0] is the outermost
    usage: Usage


class Profile:
    """A capture, loaded. Build it with memlens.capture.load()."""

    def __init__(
        self,
        *,
        complete: bool,
        meta: Meta,
        frames: list[Frame],
        stack_parent: np.ndarray,
        stack_frame: np.ndarray,
        stats: Stats,
        totals: Totals,
        timeline: Timeline,
        threads: dict[int, str],
        snapshots: tuple[Snapshot, ...] = (),
        sizes: SizeHistogram | None = None,
        allocators: list[AllocatorUse] | None = None,
    ) -> None:
        self.complete = complete
        self.meta = meta
        self.frames = frames
        self.stack_parent = stack_parent
        self.stack_frame = stack_frame
        self.stats = stats
        self.totals = totals
        self.timeline = timeline
        self.threads = threads
        self.snapshots = snapshots  # object snapshots, in the order taken (memlens.snapshots)
        # None: a capture from before the tracker counted them (sizes are then estimated)
        self.sizes = sizes
        self.allocators = allocators

    def __repr__(self) -> str:
        return (
            f"<Profile peak={self.totals.peak_bytes} stacks={len(self.stack_parent)} "
            f"rows={len(self.stats)} complete={self.complete}>"
        )

    @property
    def referenced_at_exit(self) -> bool | None:
        """Whether the memory live at exit is split into referenced and lost (the exit
        snapshot marked what the program still reaches): True, False when the marking was cut
        short (referenced is then a floor, lost a ceiling), None when the capture has no such
        mark (a checkpoint, a run without the exit snapshot, an older capture): then the ref
        columns are 0 and all of it counts as lost."""
        marked = [
            s.referenced_complete for s in self.snapshots if s.referenced_complete is not None
        ]
        return marked[-1] if marked else None

    def exit_split(self) -> dict[str, int | bool | None]:
        """The memory live at exit split (the reports' and the server's JSON fields):
        referenced_bytes, lost_bytes (measures.py) and referenced_complete; None each when the
        capture has no mark (referenced_at_exit)."""
        complete = self.referenced_at_exit
        if complete is None:
            return {"referenced_bytes": None, "lost_bytes": None, "referenced_complete": None}
        sums = self.stats.values.sum(axis=0, dtype=np.int64)
        return {
            "referenced_bytes": int(measures.named("referenced").bytes_of(sums)),
            "lost_bytes": int(measures.named("lost").bytes_of(sums)),
            "referenced_complete": complete,
        }

    def frames_of(self, stack_id: int) -> tuple[Frame, ...]:
        """The frames of a stack, caller to callee."""
        chain: list[Frame] = []
        node = stack_id
        while node >= 0:
            chain.append(self.frames[int(self.stack_frame[node])])
            node = int(self.stack_parent[node])
        chain.reverse()
        return tuple(chain)

    @cached_property
    def _stack_table(self) -> tuple[np.ndarray, np.ndarray]:
        """(stack ids, usage columns) for every stack that has rows, stack -1 included."""
        rows = _usage_columns(self.stats)
        ids, inverse = np.unique(self.stats.stack, return_inverse=True)
        table = np.zeros((len(ids), _COLUMNS), dtype=np.int64)
        _scatter_add(table, inverse.reshape(-1), rows)
        return ids, table

    def _stack_usage(self, position: int) -> StackUsage:
        """The StackUsage of row `position` of _stack_table."""
        ids, table = self._stack_table
        stack_id = int(ids[position])
        return StackUsage(stack_id, self.frames_of(stack_id), Usage.from_row(table[position]))

    def _ranked_stacks(
        self, metric: str, positions: np.ndarray, limit: int | None
    ) -> list[StackUsage]:
        """StackUsage of the given _stack_table rows, biggest `metric` first, zeros left out.
        Only the stacks returned are built (a capture may hold 100,000 stacks)."""
        _, table = self._stack_table
        values = measures.column(metric, table[positions])
        keep = values > 0
        positions, values = positions[keep], values[keep]
        # stable: equal values keep stack-id order, so reports do not flicker between runs
        order = np.argsort(-values, kind="stable")
        if limit is not None:
            order = order[:limit]
        return [self._stack_usage(int(p)) for p in positions[order]]

    def top_stacks(self, metric: str = "peak_bytes", limit: int | None = 10) -> list[StackUsage]:
        """The stacks with the most of `metric` (zero rows left out), biggest first."""
        ids, _ = self._stack_table
        return self._ranked_stacks(metric, np.arange(len(ids)), limit)

    @cached_property
    def stack_depth(self) -> np.ndarray:
        """Depth of every trie node (roots 0)."""
        return _depths(self.stack_parent)

    def node_totals(self, metric: str) -> tuple[np.ndarray, np.ndarray]:
        """Per trie node: `metric` (a measure's bytes or count) of the stacks ending there
        (self), and inclusive of everything below it. Rows with no Python frame are left out."""
        return self.node_sums(measures.column(metric, self.stats.values))

    @cached_property
    def line_keys(self) -> tuple[np.ndarray, list[Frame]]:
        """Per trie node, the key of its (file, line); and the first frame of each key. Keys are
        numbered in frame order, as LineIndex orders its lines."""
        keys: dict[tuple[str, int], int] = {}
        first: list[Frame] = []
        frame_key: list[int] = []  # a list, not an array: no numpy call per frame
        for frame in self.frames:
            key = (frame.file, frame.line)
            if key not in keys:
                keys[key] = len(first)
                first.append(frame)
            frame_key.append(keys[key])
        frame_keys = np.array(frame_key, dtype=np.int64)
        return frame_keys[self.stack_frame.astype(np.int64)], first

    def charged_nodes(self, is_user: UserCode = is_user_code) -> np.ndarray:
        """Per trie node: the innermost node at or above it whose frame is the user's code (-1:
        none). Walks all nodes up together, one level per pass."""
        parent, frame = self.stack_parent, self.stack_frame
        user_file = {file: is_user(file) for file in {f.file for f in self.frames}}
        user_frame = np.array([user_file[f.file] for f in self.frames], dtype=bool)
        user_node = user_frame[frame] if len(frame) else np.zeros(0, dtype=bool)
        innermost = np.where(user_node, np.arange(len(parent), dtype=np.int64), -1)
        pending = np.nonzero(~user_node)[0]
        above = parent[pending]
        while len(pending):
            alive = above >= 0
            pending, above = pending[alive], above[alive]
            hit = user_node[above]
            innermost[pending[hit]] = above[hit]
            pending, above = pending[~hit], parent[above[~hit]]
        return innermost

    def row_nodes(self, view: str, is_user: UserCode = is_user_code) -> np.ndarray:
        """Per stats row, the trie node whose line the row is charged to in the self or charged
        view (-1: none, as for rows with no Python frame). Inclusive charges a row to every line
        of its stack: see line_totals."""
        stack = self.stats.stack
        if view == SELF:
            return stack
        if view != CHARGED:
            raise ValueError(f"unknown per-row view {view!r}: {SELF} or {CHARGED}")
        charged = self.charged_nodes(is_user)
        return np.where(stack >= 0, charged[np.maximum(stack, 0)] if len(charged) else -1, -1)

    def line_totals(
        self, view: str, metrics: tuple[str, ...], is_user: UserCode = is_user_code
    ) -> np.ndarray:
        """Per line key (line_keys), each metric (a measure's bytes or count) in one view:
        shape (keys, len(metrics)). The one attribution every per-line number comes from."""
        table = np.stack([measures.column(m, self.stats.values) for m in metrics], axis=1)
        return self._line_sums(view, table.reshape(len(self.stats), len(metrics)), is_user)

    def node_sums(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per trie node, the stats rows' `rows` values (one row per stats row) of the stacks
        ending there, and inclusive of everything below it. Rows with no Python frame (stack
        -1) are left out."""
        node = np.zeros((len(self.stack_parent), *rows.shape[1:]), dtype=np.int64)
        with_stack = self.stats.stack >= 0
        _scatter_add(node, self.stats.stack[with_stack], rows[with_stack])
        return node, _inclusive(node, self.stack_parent, self.stack_depth)

    def _line_sums(self, view: str, rows: np.ndarray, is_user: UserCode) -> np.ndarray:
        """Per line key, the stats rows' `rows` values summed in one view."""
        node_key, first = self.line_keys
        if view == INCLUSIVE:
            return _key_views(*self.node_sums(rows), node_key, self, len(first))[1]
        out = np.zeros((len(first), rows.shape[1]), dtype=np.int64)
        row_node = self.row_nodes(view, is_user)
        keep = row_node >= 0
        _scatter_add(out, node_key[row_node[keep]], rows[keep])
        return out

    def line_top_stacks(
        self, view: str, metric: str, is_user: UserCode = is_user_code
    ) -> dict[int, int]:
        """Per line key in the self or charged view: the stack of its biggest `metric` row."""
        row_node = self.row_nodes(view, is_user)
        keep = np.nonzero(row_node >= 0)[0]
        if not len(keep):
            return {}
        keys = self.line_keys[0][row_node[keep]]
        order = np.argsort(-measures.column(metric, self.stats.values[keep]), kind="stable")
        first_keys, first_at = np.unique(keys[order], return_index=True)
        stacks = self.stats.stack[keep[order[first_at]]]
        return dict(zip(first_keys.tolist(), stacks.tolist(), strict=True))

    def with_rows(self, rows: np.ndarray) -> Profile:
        """The same capture with only some stats rows (a boolean mask or indices): one
        thread's, one test's. Stacks, frames, totals and the timeline are unchanged; the exact
        sizes and allocators are the whole run's, so they are left out (reports estimate)."""
        stats = self.stats
        subset = Profile(
            complete=self.complete,
            meta=self.meta,
            frames=self.frames,
            stack_parent=self.stack_parent,
            stack_frame=self.stack_frame,
            stats=Stats(
                stats.stack[rows], stats.thread[rows], stats.domain[rows], stats.values[rows]
            ),
            totals=self.totals,
            timeline=self.timeline,
            threads=self.threads,
            snapshots=self.snapshots,
        )
        if "line_keys" in self.__dict__:  # the same frames and trie: keep the cached keys
            subset.__dict__["line_keys"] = self.line_keys
        return subset

    @cached_property
    def lines(self) -> LineIndex:
        return LineIndex(self)


def _usage_columns(stats: Stats) -> np.ndarray:
    """Stats rows widened with the per-domain peak and allocated bytes."""
    rows = np.zeros((len(stats), _COLUMNS), dtype=np.int64)
    rows[:, : len(measures.COLUMNS)] = stats.values
    peak = stats.values[:, measures.COLUMNS.index("peak_bytes")]
    alloc = stats.values[:, measures.COLUMNS.index("alloc_bytes")]
    for domain in range(len(DOMAINS)):
        mask = stats.domain == domain
        rows[mask, _PEAK_BY_DOMAIN + domain] = peak[mask]
        rows[mask, _ALLOC_BY_DOMAIN + domain] = alloc[mask]
    return rows


class LazyMap(Mapping[_K, _V]):
    """A read-only dict whose values are built on first access (by their index) and kept."""

    def __init__(self, index: dict[_K, int], build: Callable[[int], _V]) -> None:
        self._index = index
        self._build = build
        self._built: dict[_K, _V] = {}

    def __getitem__(self, key: _K) -> _V:
        value = self._built.get(key)
        if value is None:
            value = self._built[key] = self._build(self._index[key])
        return value

    def __contains__(self, key: object) -> bool:
        return key in self._index

    def __iter__(self) -> Iterator[_K]:
        return iter(self._index)

    def __len__(self) -> int:
        return len(self._index)


class LineIndex:
    """Per-line and per-function numbers, computed once over the stack trie (vectorised)."""

    def __init__(self, profile: Profile) -> None:
        self._profile = profile
        columns = _usage_columns(profile.stats)
        # Only the columns with any value go through the trie (leaks, temporaries, unused
        # domains are often all zero); the zero ones are put back per key (_widen).
        self._live = np.flatnonzero(columns.any(axis=0))
        node_self, node_total = profile.node_sums(columns[:, self._live])
        node_line, first = profile.line_keys
        line_self, line_inclusive = map(
            self._widen, _key_views(node_self, node_total, node_line, profile, len(first))
        )
        self._node_sums = node_self, node_total
        self._node_line = node_line
        self._line_keys = {(f.file, f.line): i for i, f in enumerate(first)}
        # Built on first access, per line: the editor asks for a few files' lines, not all
        self.by_line: Mapping[tuple[str, int], LineStats] = LazyMap(
            self._line_keys,
            lambda i: LineStats(
                first[i].file,
                first[i].line,
                first[i].function,
                Usage.from_row(line_inclusive[i]),
                Usage.from_row(line_self[i]),
            ),
        )
        self._line_inclusive = line_inclusive

    @cached_property
    def by_function(self) -> Mapping[tuple[str, str, int], FunctionStats]:
        """Per function, computed on first use (lenses, reports): loading a capture needs only
        the lines."""
        profile = self._profile
        function_keys: dict[tuple[str, str, int], int] = {}
        frame_function = np.array(
            [
                function_keys.setdefault((f.file, f.function, f.first_line), len(function_keys))
                for f in profile.frames
            ],
            dtype=np.int64,
        )
        node_function = frame_function[profile.stack_frame.astype(np.int64)]
        function_self, function_inclusive = map(
            self._widen,
            _key_views(*self._node_sums, node_function, profile, len(function_keys)),
        )
        function_names = list(function_keys)  # in key order
        return LazyMap(
            function_keys,
            lambda i: FunctionStats(
                *function_names[i],
                Usage.from_row(function_inclusive[i]),
                Usage.from_row(function_self[i]),
            ),
        )

    def _widen(self, live: np.ndarray) -> np.ndarray:
        """Per-key sums of the live columns back to all the usage columns."""
        wide = np.zeros((len(live), _COLUMNS), dtype=np.int64)
        wide[:, self._live] = live
        return wide

    def line(self, file: str, line: int) -> LineStats | None:
        return self.by_line.get((file, line))

    def files(self) -> list[str]:
        return sorted({file for file, _ in self.by_line})

    def in_file(self, file: str) -> list[LineStats]:
        """The lines of one file that have memory, in line order."""
        return [self.by_line[key] for key in sorted(self.keys_in_file(file))]

    def keys_in_file(self, file: str) -> list[tuple[str, int]]:
        """The by_line keys of one file, in by_line's order (nothing built)."""
        return self._keys_by_file.get(file, [])

    def inclusive_column(self, raw: str) -> dict[tuple[str, int], int]:
        """Every line's inclusive value of one raw column (measures.COLUMNS), nothing built."""
        column = self._line_inclusive[:, measures.COLUMNS.index(raw)].tolist()
        return dict(zip(self._line_keys, column, strict=True))

    def functions_in_file(self, file: str) -> list[FunctionStats]:
        keys = [key for key in self.by_function if key[0] == file]  # keys only: nothing built
        return sorted((self.by_function[key] for key in keys), key=lambda s: s.first_line)

    @cached_property
    def _keys_by_file(self) -> dict[str, list[tuple[str, int]]]:
        by_file: dict[str, list[tuple[str, int]]] = {}
        for key in self._line_keys:
            by_file.setdefault(key[0], []).append(key)
        return by_file

    def top(
        self, metric: str = "peak_bytes", limit: int | None = 10, *, self_only: bool = False
    ) -> list[LineStats]:
        """The lines with the most of `metric` (zeros left out), biggest first."""

        def value(s: LineStats) -> int:
            return (s.self if self_only else s.inclusive).get(metric)

        ranked = sorted((s for s in self.by_line.values() if value(s) > 0), key=value, reverse=True)
        return ranked if limit is None else ranked[:limit]

    @cached_property
    def _stack_lines(self) -> tuple[np.ndarray, np.ndarray]:
        """For each stack with rows: the line keys of all its frames, padded with -1."""
        ids, _ = self._profile._stack_table
        parent = self._profile.stack_parent
        ids = ids[ids >= 0]
        columns = []
        node = ids.copy()
        while len(node) and np.any(node >= 0):
            alive = node >= 0
            column = np.full(len(ids), -1, dtype=np.int64)
            column[alive] = self._node_line[node[alive]]
            columns.append(column)
            node = np.where(alive, parent[np.maximum(node, 0)], -1)
        matrix = (
            np.stack(columns, axis=1) if columns else np.full((len(ids), 1), -1, dtype=np.int64)
        )
        return ids, matrix

    def stacks_through(
        self,
        file: str,
        line: int,
        metric: str = "peak_bytes",
        limit: int | None = 3,
        *,
        self_only: bool = False,
    ) -> list[StackUsage]:
        """The stacks passing through a line, biggest `metric` first (zeros left out).
        With self_only, only the stacks whose innermost frame is the line."""
        key = self._line_keys.get((file, line))
        if key is None:
            return []
        all_ids, _ = self._profile._stack_table
        # stack -1 (no Python frame), when present, is first in _stack_table: never a hit
        offset = int(len(all_ids) and all_ids[0] < 0)
        if self_only:  # the innermost frame alone: no need for the whole stacks' lines
            hits = self._node_line[all_ids[offset:]] == key
        else:
            _, matrix = self._stack_lines
            hits = (matrix == key).any(axis=1)
        return self._profile._ranked_stacks(metric, np.nonzero(hits)[0] + offset, limit)


def _depths(parent: np.ndarray) -> np.ndarray:
    """Depth of every trie node (roots 0), by pointer jumping: O(n log depth), vectorised."""
    depth = (parent >= 0).astype(np.int64)
    jump = parent.copy()
    while True:
        alive = np.nonzero(jump >= 0)[0]
        if not len(alive):
            return depth
        # depth[i] is the distance from i to jump[i]; a root has depth 0 and jump -1
        target = jump[alive]
        depth[alive] += depth[target]
        jump[alive] = jump[target]


_FLOAT_EXACT = 2**53


def _scatter_add(target: np.ndarray, index: np.ndarray, rows: np.ndarray) -> None:
    """target[index[i]] += rows[i] for every i, exact in int64 (np.add.at is much slower)."""
    if not rows.size:  # no rows, or no columns
        return
    dense = len(index) * 4 >= len(target)  # bincount's cost is the target's size
    if dense and rows.min() >= 0 and int(rows.sum(axis=0).max()) < _FLOAT_EXACT:
        # float64 bincount is exact below 2**53 and far faster than sorting
        if rows.ndim == 1:
            target += np.bincount(index, weights=rows, minlength=len(target)).astype(np.int64)
        else:
            for column in range(rows.shape[1]):
                sums = np.bincount(index, weights=rows[:, column], minlength=len(target))
                target[:, column] += sums.astype(np.int64)
        return
    order = np.argsort(index, kind="stable")
    sorted_index = index[order]
    starts = np.flatnonzero(np.r_[True, sorted_index[1:] != sorted_index[:-1]])
    target[sorted_index[starts]] += np.add.reduceat(rows[order], starts, axis=0)


def _inclusive(node_self: np.ndarray, parent: np.ndarray, depth: np.ndarray) -> np.ndarray:
    """Values summed over each node's subtree: children into parents, deepest level first."""
    total = node_self.copy()
    order = np.argsort(depth, kind="stable")
    bounds = np.searchsorted(depth[order], np.arange(int(depth.max(initial=0)) + 2))
    for level in range(len(bounds) - 2, 0, -1):
        nodes = order[bounds[level] : bounds[level + 1]]
        _scatter_add(total, parent[nodes], total[nodes])
    return total


def _key_views(
    node_self: np.ndarray, node_total: np.ndarray, node_key: np.ndarray, profile: Profile, n: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per key (a line, a function): the self and inclusive sums of the nodes of each key."""
    key_self = np.zeros((n, *node_self.shape[1:]), dtype=np.int64)
    _scatter_add(key_self, node_key, node_self)
    return key_self, _sum_topmost(node_total, node_key, profile.stack_parent, n)


def _sum_topmost(
    node_total: np.ndarray, node_key: np.ndarray, parent: np.ndarray, n_keys: int
) -> np.ndarray:
    """Sum node_total per key, counting a node only if no ancestor has the same key (so a
    recursive stack through a line counts once)."""
    topmost = np.ones(len(parent), dtype=bool)
    # walk all nodes up together, keeping only those still searching: O(sum of depths)
    node = np.nonzero(parent >= 0)[0]
    ancestor = parent[node]
    while len(node):
        same = node_key[ancestor] == node_key[node]
        topmost[node[same]] = False
        up = parent[ancestor]
        searching = ~same & (up >= 0)
        node, ancestor = node[searching], up[searching]
    out = np.zeros((n_keys, *node_total.shape[1:]), dtype=np.int64)
    _scatter_add(out, node_key[topmost], node_total[topmost])
    return out
