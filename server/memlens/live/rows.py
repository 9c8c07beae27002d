"""What the live view shows of a profile: the lines holding the most memory now, per thread.

In a checkpoint, a stack's `leak` numbers are what it holds live at that moment (at the end of a
run, what was never freed), so "live now" is `leak_bytes`. The per-line numbers come from the
model's LineIndex, self numbers as in `memlens summary`: the line that allocated the memory.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from memlens.model import LineStats, Profile
from memlens.units import format_bytes

# (key, Usage attribute, column title): the sort orders the view offers
SORTS = (
    ("l", "leak_bytes", "live now"),
    ("p", "peak_bytes", "at peak"),
    ("a", "alloc_bytes", "allocated"),
    ("n", "alloc_count", "allocations"),
)
# numbers first: on an 80-column terminal they stay in view when a long path is cut
COLUMNS = ("live now", "live #", "at peak", "allocated", "allocations", "location", "function")
ALL_THREADS = -1
TOP_ROWS = 50
SHORT_PATH = 30  # longer paths outside the current directory are cut


@dataclass(frozen=True)
class Row:
    key: str  # "file:line", also the table's row key
    cells: tuple[str, ...]  # in COLUMNS order


def for_thread(profile: Profile, thread: int) -> Profile:
    """The profile restricted to one thread's allocations (ALL_THREADS: itself)."""
    if thread == ALL_THREADS:
        return profile
    return profile.with_rows(profile.stats.thread == thread)


def threads(profile: Profile) -> list[tuple[str, int]]:
    """(label, id) of every thread that allocated, for the selector; all threads first."""
    ids = np.unique(profile.stats.thread).tolist()
    named = [(f"{profile.threads.get(t) or 'thread'} ({t})", t) for t in ids]
    return [("all threads", ALL_THREADS), *named]


def top_rows(profile: Profile, metric: str, limit: int = TOP_ROWS) -> list[Row]:
    """The lines with the most `metric`, biggest first, formatted for the table."""
    return [_row(stats) for stats in profile.lines.top(metric, limit, self_only=True)]


def _row(stats: LineStats) -> Row:
    usage = stats.self
    return Row(
        f"{stats.file}:{stats.line}",
        (
            format_bytes(usage.leak_bytes),
            f"{usage.leak_count:,}",
            format_bytes(usage.peak_bytes),
            format_bytes(usage.alloc_bytes),
            f"{usage.alloc_count:,}",
            f"{short_path(stats.file)}:{stats.line}",
            stats.function,
        ),
    )


def short_path(file: str) -> str:
    """A file under the current directory relative to it (the user's own code, usually); a
    long path elsewhere cut to its last two parts (the table's row key keeps the whole)."""
    here = os.getcwd() + os.sep
    if file.startswith(here):
        return file[len(here) :]
    parts = file.split(os.sep)
    return file if len(file) <= SHORT_PATH or len(parts) <= 3 else os.path.join("…", *parts[-2:])


def heap_now(profile: Profile) -> int:
    """Bytes live at the capture's moment: the last timeline sample, else the live total."""
    heap = profile.timeline.heap
    return int(heap[-1]) if len(heap) else profile.totals.leak_bytes


def series(values: np.ndarray, width: int = 120) -> list[float]:
    """At most `width` points of a timeline column (the max of each bucket keeps the peaks)."""
    if len(values) <= width:
        return [float(v) for v in values]
    buckets = np.array_split(values, width)
    return [float(bucket.max()) for bucket in buckets]
