"""The measures of memory a user can ask for (peak, total, leaks, lost, referenced, temporary,
freed): each defined once, here. The command-line flags, the table kinds, the flame graph's
choices, the language server's `metric` parameter and the model's sums all iterate over
MEASURES; adding a measure is one entry below.

A capture records the raw COLUMNS per stats row. A measure is a sum of raw columns with signs
(freed = allocated - leaked), so it can be computed on any table whose first columns are COLUMNS
(stats rows, per-stack or per-line sums: summing is linear), or on a Usage.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

# Column order of the capture's `stats` table (the file format).
STATS_COLUMNS = (
    "alloc_count",
    "alloc_bytes",
    "peak_count",
    "peak_bytes",
    "leak_count",
    "leak_bytes",
    "temp_count",
    "temp_bytes",
)
# Column order of Stats.values: the stats columns, then what of each row's leak the exit snapshot
# found still referenced by the program (its `referenced` rows; 0 when a capture has none).
COLUMNS = (*STATS_COLUMNS, "ref_count", "ref_bytes")

Terms = tuple[tuple[int, str], ...]  # (sign, raw column): the measure is their signed sum


@dataclass(frozen=True)
class Measure:
    """One measure. Its bytes are `metric`; every measure also has a count of allocations."""

    name: str  # the user's word: `--total`, `table --sort`'s kind, the flame graph's choice
    metric: str  # its bytes in JSON and on the wire ("freed_bytes"); the count is `count`
    title: str  # what a report of it is of: "memory allocated over the run"
    whole: str  # what a share of it is of: "all allocations"
    help: str  # the flag's help, after "rows/the tree/the graph of ..."
    heading: str  # a column of it in a table ("leaked")
    bytes_terms: Terms
    count_terms: Terms

    @property
    def count(self) -> str:
        """The name of its allocation count ("freed_count")."""
        return self.metric.removesuffix("_bytes") + "_count"

    def bytes_of(self, table: np.ndarray) -> np.ndarray:
        """The measure's bytes per row of a table whose first columns are COLUMNS."""
        return _combine(self.bytes_terms, table)

    def count_of(self, table: np.ndarray) -> np.ndarray:
        return _combine(self.count_terms, table)


def _combine(terms: Terms, table: np.ndarray) -> np.ndarray:
    out = np.zeros(table.shape[:-1], dtype=np.int64)
    for sign, raw in terms:
        out += sign * table[..., COLUMNS.index(raw)]
    return out


def _raw(name: str, prefix: str, title: str, whole: str, help: str, heading: str) -> Measure:
    return Measure(
        name,
        f"{prefix}_bytes",
        title,
        whole,
        help,
        heading,
        ((1, f"{prefix}_bytes"),),
        ((1, f"{prefix}_count"),),
    )


MEASURES = (
    _raw(
        "peak",
        "peak",
        "memory at the peak",
        "the peak",
        "memory live at the peak (default)",
        "peak",
    ),
    _raw(
        "total",
        "alloc",
        "memory allocated over the run",
        "all allocations",
        "all memory allocated over the run",
        "total",
    ),
    _raw(
        "leaks",
        "leak",
        "memory still live at exit (referenced or lost)",
        "memory live at exit",
        "memory still live when tracking stopped, referenced or lost",
        "live at exit",
    ),
    Measure(
        "lost",
        "lost_bytes",
        "memory lost (live at exit, reached from no root)",
        "lost memory",
        "memory still live at exit that no module, class or running frame reaches",
        "lost",
        ((1, "leak_bytes"), (-1, "ref_bytes")),
        ((1, "leak_count"), (-1, "ref_count")),
    ),
    _raw(
        "referenced",
        "ref",
        "memory still referenced at exit",
        "referenced memory",
        "memory still live at exit that a module, class or running frame reaches",
        "referenced",
    ),
    _raw(
        "temporary",
        "temp",
        "temporary allocations",
        "temporary allocations",
        "temporary allocations (freed right away)",
        "temporary",
    ),
    Measure(
        "freed",
        "freed_bytes",
        "memory allocated and freed before the end",
        "freed memory",
        "memory allocated and freed before tracking stopped",
        "freed",
        ((1, "alloc_bytes"), (-1, "leak_bytes")),
        ((1, "alloc_count"), (-1, "leak_count")),
    ),
)
DEFAULT = MEASURES[0]
EXIT_MEASURES = ("leaks", "lost", "referenced")  # the split of memory live at exit
# What the split means, in the words every report that shows it uses (docs/design.md,
# "Referenced and lost at exit").
EXIT_TERMS = (
    "Still referenced = live at exit and reachable from a module global, class attribute,\n"
    "running frame or C global: memory a program keeps to its end. Lost = live at exit and\n"
    "reachable from none of them (dropped C buffers, uncollected reference cycles)."
)
NOT_SPLIT = (
    "This capture has no exit snapshot to tell memory still referenced at exit from lost\n"
    "memory: all memory live at exit counts as lost."
)
BY_NAME = {m.name: m for m in MEASURES}
BY_METRIC = {m.metric: m for m in MEASURES}


def named(name: str) -> Measure:
    """The measure of a user's word ("total"); ValueError naming the choices."""
    if name not in BY_NAME:
        raise ValueError(f"unknown measure {name!r} (one of {', '.join(BY_NAME)})")
    return BY_NAME[name]


def of_metric(metric: str) -> Measure:
    """The measure whose bytes are `metric` ("freed_bytes"), as the language server's requests
    name it; ValueError naming the choices."""
    if metric not in BY_METRIC:
        raise ValueError(f"unknown metric {metric!r} (one of {', '.join(BY_METRIC)})")
    return BY_METRIC[metric]


BY_COUNT = {m.count: m for m in MEASURES}


def column(metric: str, table: np.ndarray) -> np.ndarray:
    """A measure's bytes ("freed_bytes") or count ("freed_count") per row of a table whose first
    columns are COLUMNS."""
    if metric in BY_COUNT:
        return BY_COUNT[metric].count_of(table)
    return of_metric(metric).bytes_of(table)


def terms(metric: str) -> Terms:
    """The signed raw columns a measure's bytes or count ("lost_count") is the sum of."""
    return BY_COUNT[metric].count_terms if metric in BY_COUNT else of_metric(metric).bytes_terms


def value(metric: str, raw: Callable[[str], int]) -> int:
    """A measure's bytes or count from raw column values (`raw("alloc_bytes")`)."""
    return sum(sign * raw(name) for sign, name in terms(metric))
