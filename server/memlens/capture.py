"""The only reader and writer of memlens capture files (msgpack, format version 1).

A capture is one msgpack map (see DESIGN.md, "Capture file"). Columnar arrays keep it small:
its size grows with the number of distinct stacks, not with the number of allocations.

Conventions the reader checks:
- `stacks` nodes are in creation order: a node's parent comes before it (`parent[n] < n`, -1 for
  a root), so the trie has no cycles.
- `totals.peak_ns` and `timeline.t_ms` count from the start of tracking; `meta.start_ns` and
  `meta.end_ns` are wall-clock nanoseconds since the epoch.
- `stats.domain` is 0 for Python objects (the PyMem/PyObject allocators), 1 for the malloc
  family, 2 for mmap.

Anything malformed (truncated, foreign, newer, inconsistent) raises `CaptureError` with a
one-line message; nothing here ever returns a half-read profile.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import msgpack
import numpy as np

from memlens.model import METRICS, Frame, Meta, Profile, Stats, Timeline, Totals

MAGIC = "memlens-capture"
VERSION = 1
# A capture holds aggregates, not events: even huge programs stay far below this. The cap keeps
# a foreign multi-gigabyte file from being read into memory.
MAX_CAPTURE_BYTES = 1 << 30


class CaptureError(Exception):
    """A capture that cannot be read; the message names the file and the problem."""


def load(path: str | os.PathLike[str]) -> Profile:
    """Read a capture file into a Profile."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if path.is_dir():
            raise CaptureError(f"{path}: is a directory, not a capture file")
        if size > MAX_CAPTURE_BYTES:
            raise CaptureError(f"{path}: {size} bytes is too large for a memlens capture")
        data = path.read_bytes()
    except FileNotFoundError:
        raise CaptureError(f"{path}: no such capture file") from None
    except PermissionError:
        raise CaptureError(f"{path}: permission denied") from None
    except IsADirectoryError:
        raise CaptureError(f"{path}: is a directory, not a capture file") from None
    except OSError as error:
        raise CaptureError(f"{path}: cannot read: {error.strerror or error}") from None
    return loads(data, source=str(path))


def loads(data: bytes, source: str = "capture") -> Profile:
    """Parse capture bytes (a file's content, or what the tracker returns in memory)."""
    if not data:
        raise CaptureError(f"{source}: empty file, not a memlens capture")
    try:
        raw = msgpack.unpackb(data, raw=False, strict_map_key=False)
    except msgpack.ExtraData:
        if _looks_like_capture(data):
            raise CaptureError(
                f"{source}: trailing bytes after the capture (corrupt file)"
            ) from None
        raise CaptureError(f"{source}: not a memlens capture") from None
    except (ValueError, msgpack.UnpackException):
        if _looks_like_capture(data):
            raise CaptureError(f"{source}: truncated or corrupt capture") from None
        raise CaptureError(f"{source}: not a memlens capture") from None
    return from_dict(raw, source=source)


def dump(profile: Profile, path: str | os.PathLike[str]) -> None:
    """Write a Profile atomically (temp file, then rename)."""
    path = Path(path)
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temp.write_bytes(dumps(profile))
    temp.replace(path)


def dumps(profile: Profile) -> bytes:
    return msgpack.packb(to_dict(profile), use_bin_type=True)


def _looks_like_capture(data: bytes) -> bool:
    return MAGIC.encode() in data[:64]


# --- dict <-> Profile -------------------------------------------------------------------------


class _Reader:
    """Typed access to the raw map, naming the field in every error."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, what: str) -> CaptureError:
        return CaptureError(f"{self.source}: corrupt capture: {what}")

    def table(self, raw: dict[str, Any], key: str) -> dict[str, Any]:
        value = raw.get(key)
        if not isinstance(value, dict):
            raise self.fail(f"missing or malformed '{key}'")
        return value

    def ints(self, table: dict[str, Any], name: str, key: str, length: int | None) -> np.ndarray:
        column = table.get(key)
        if not isinstance(column, list) or not all(type(v) is int for v in column):
            raise self.fail(f"'{name}.{key}' is not a list of integers")
        if length is not None and len(column) != length:
            raise self.fail(f"'{name}.{key}' has {len(column)} entries, expected {length}")
        try:
            return np.array(column, dtype=np.int64)
        except OverflowError:
            raise self.fail(f"'{name}.{key}' has an integer out of range") from None

    def strings(self, raw: dict[str, Any]) -> list[str]:
        strings = raw.get("strings")
        if not isinstance(strings, list) or not all(isinstance(s, str) for s in strings):
            raise self.fail("'strings' is not a list of strings")
        return strings

    def in_range(self, column: np.ndarray, name: str, low: int, high: int) -> None:
        if column.size and (column.min() < low or column.max() >= high):
            raise self.fail(f"'{name}' refers outside [{low}, {high})")


def from_dict(raw: Any, source: str = "capture") -> Profile:
    """Validate a decoded capture map and build the Profile."""
    if not isinstance(raw, dict) or raw.get("magic") != MAGIC:
        raise CaptureError(f"{source}: not a memlens capture")
    version = raw.get("version")
    if type(version) is not int:
        raise CaptureError(f"{source}: corrupt capture: no format version")
    if version > VERSION:
        raise CaptureError(
            f"{source}: capture format version {version} is newer than this memlens reads "
            f"(version {VERSION}); upgrade memlens"
        )
    if version < 1:
        raise CaptureError(f"{source}: unknown capture format version {version}")
    r = _Reader(source)

    strings = r.strings(raw)
    frames_raw = r.table(raw, "frames")
    n_frames = len(frames_raw.get("line") or [])
    function = r.ints(frames_raw, "frames", "function", n_frames)
    file = r.ints(frames_raw, "frames", "file", n_frames)
    line = r.ints(frames_raw, "frames", "line", n_frames)
    first_line = r.ints(frames_raw, "frames", "first_line", n_frames)
    r.in_range(function, "frames.function", 0, len(strings))
    r.in_range(file, "frames.file", 0, len(strings))
    frames = [
        Frame(strings[f], strings[p], int(n), int(fl))
        for f, p, n, fl in zip(
            function.tolist(), file.tolist(), line.tolist(), first_line.tolist(), strict=True
        )
    ]

    stacks_raw = r.table(raw, "stacks")
    n_nodes = len(stacks_raw.get("parent") or [])
    parent = r.ints(stacks_raw, "stacks", "parent", n_nodes)
    frame = r.ints(stacks_raw, "stacks", "frame", n_nodes)
    r.in_range(frame, "stacks.frame", 0, n_frames)
    if n_nodes and not (np.all(parent >= -1) and np.all(parent < np.arange(n_nodes))):
        raise r.fail("'stacks.parent' must refer to an earlier node or be -1")

    stats_raw = r.table(raw, "stats")
    n_rows = len(stats_raw.get("stack") or [])
    stack = r.ints(stats_raw, "stats", "stack", n_rows)
    thread = r.ints(stats_raw, "stats", "thread", n_rows)
    domain = r.ints(stats_raw, "stats", "domain", n_rows)
    values = np.zeros((n_rows, len(METRICS)), dtype=np.int64)
    for column, metric in enumerate(METRICS):
        values[:, column] = r.ints(stats_raw, "stats", metric, n_rows)
    # -1 is allowed: an allocation made with no Python frame on its thread's stack.
    r.in_range(stack, "stats.stack", -1, n_nodes)
    r.in_range(domain, "stats.domain", 0, 3)
    if values.size and values.min() < 0:
        raise r.fail("'stats' has a negative count or size")

    totals_raw = r.table(raw, "totals")
    totals_fields = (
        "alloc_count",
        "alloc_bytes",
        "peak_bytes",
        "peak_ns",
        "leak_bytes",
        "rss_peak",
    )
    for key in totals_fields:
        if type(totals_raw.get(key)) is not int:
            raise r.fail(f"'totals.{key}' is not an integer")
    totals = Totals(**{key: totals_raw[key] for key in totals_fields})

    timeline_raw = r.table(raw, "timeline")
    n_points = len(timeline_raw.get("t_ms") or [])
    timeline = Timeline(
        t_ms=r.ints(timeline_raw, "timeline", "t_ms", n_points),
        heap=r.ints(timeline_raw, "timeline", "heap", n_points),
        rss=r.ints(timeline_raw, "timeline", "rss", n_points),
    )

    threads_raw = r.table(raw, "threads")
    n_threads = len(threads_raw.get("id") or [])
    thread_ids = r.ints(threads_raw, "threads", "id", n_threads)
    thread_names = r.ints(threads_raw, "threads", "name", n_threads)
    r.in_range(thread_names, "threads.name", 0, len(strings))
    threads = {
        int(i): strings[n] for i, n in zip(thread_ids.tolist(), thread_names.tolist(), strict=True)
    }

    complete = raw.get("complete")
    if not isinstance(complete, bool):
        raise r.fail("'complete' is not a boolean")
    meta = _meta(r, raw.get("meta"))

    frames, parent, frame, stack = _without_launcher(frames, parent, frame, stack)
    return Profile(
        complete=complete,
        meta=meta,
        frames=frames,
        stack_parent=parent,
        stack_frame=frame,
        stats=Stats(stack=stack, thread=thread, domain=domain, values=values),
        totals=totals,
        timeline=timeline,
        threads=threads,
    )


# The frames of `memlens run` itself (and of runpy under `python -m memlens run`) sit below the
# script's `<module>` in every stack. They are ours, not the user's: dropped when they form the
# root of a stack. The user's own runpy calls deeper down are kept.
_LAUNCHER_SUFFIXES = (
    "/memlens/cli/run.py",
    "/memlens/cli/__init__.py",
    "/memlens/__main__.py",
    "/bin/memlens",
    "/runpy.py",
)


def _is_launcher(file: str) -> bool:
    return file == "<frozen runpy>" or file.endswith(_LAUNCHER_SUFFIXES)


def _without_launcher(
    frames: list[Frame], parent: np.ndarray, frame: np.ndarray, stack: np.ndarray
) -> tuple[list[Frame], np.ndarray, np.ndarray, np.ndarray]:
    """Drop root frames of the launcher; allocations made by the launcher alone get stack -1."""
    launcher = np.array([_is_launcher(f.file) for f in frames], dtype=bool)
    if not launcher.any() or not len(parent):
        return frames, parent, frame, stack
    dropped = np.zeros(len(parent), dtype=bool)
    for node in np.flatnonzero(launcher[frame]).tolist():  # parents come first: one pass
        up = int(parent[node])
        dropped[node] = up < 0 or bool(dropped[up])
    if not dropped.any():
        return frames, parent, frame, stack
    new_index = np.cumsum(~dropped) - 1
    kept = ~dropped
    old_parent = parent[kept]
    new_parent = np.where(old_parent < 0, -1, new_index[np.maximum(old_parent, 0)])
    new_parent = np.where((old_parent >= 0) & dropped[np.maximum(old_parent, 0)], -1, new_parent)
    new_stack = np.where(stack < 0, -1, new_index[np.maximum(stack, 0)])
    new_stack = np.where((stack >= 0) & dropped[np.maximum(stack, 0)], -1, new_stack)
    # Frames no kept node uses go too, so no report lists the launcher's lines.
    kept_frame = frame[kept]
    used = np.zeros(len(frames), dtype=bool)
    used[kept_frame] = True
    frame_index = np.cumsum(used) - 1
    kept_frames = [f for f, keep in zip(frames, used.tolist(), strict=True) if keep]
    return (
        kept_frames,
        new_parent.astype(np.int64),
        frame_index[kept_frame],
        new_stack.astype(np.int64),
    )


def _meta(r: _Reader, raw: Any) -> Meta:
    if not isinstance(raw, dict):
        raise r.fail("missing or malformed 'meta'")
    argv = raw.get("argv", [])
    if not isinstance(argv, list) or not all(isinstance(a, str) for a in argv):
        raise r.fail("'meta.argv' is not a list of strings")

    def integer(key: str, default: int | None = 0) -> int | None:
        value = raw.get(key, default)
        if value is not None and type(value) is not int:
            raise r.fail(f"'meta.{key}' is not an integer")
        return value

    def text(key: str) -> str:
        value = raw.get(key, "")
        if not isinstance(value, str):
            raise r.fail(f"'meta.{key}' is not a string")
        return value

    return Meta(
        argv=list(argv),
        pid=integer("pid") or 0,
        python_version=text("python_version"),
        platform=text("platform"),
        memlens_version=text("memlens_version"),
        start_ns=integer("start_ns") or 0,
        end_ns=integer("end_ns") or 0,
        python_allocators=bool(raw.get("python_allocators", False)),
        native_traces=bool(raw.get("native_traces", False)),
        exit_code=integer("exit_code", None),
    )


def to_dict(profile: Profile) -> dict[str, Any]:
    """The capture map of a Profile (strings interned again)."""
    strings: list[str] = []
    index: dict[str, int] = {}

    def intern(text: str) -> int:
        if text not in index:
            index[text] = len(strings)
            strings.append(text)
        return index[text]

    frames = {
        "function": [intern(f.function) for f in profile.frames],
        "file": [intern(f.file) for f in profile.frames],
        "line": [f.line for f in profile.frames],
        "first_line": [f.first_line for f in profile.frames],
    }
    stats: dict[str, list[int]] = {
        "stack": profile.stats.stack.tolist(),
        "thread": profile.stats.thread.tolist(),
        "domain": profile.stats.domain.tolist(),
    }
    for column, metric in enumerate(METRICS):
        stats[metric] = profile.stats.values[:, column].tolist()
    meta = profile.meta
    meta_map: dict[str, Any] = {
        "argv": meta.argv,
        "pid": meta.pid,
        "python_version": meta.python_version,
        "platform": meta.platform,
        "memlens_version": meta.memlens_version,
        "start_ns": meta.start_ns,
        "end_ns": meta.end_ns,
        "python_allocators": meta.python_allocators,
        "native_traces": meta.native_traces,
    }
    if meta.exit_code is not None:
        meta_map["exit_code"] = meta.exit_code
    thread_ids = sorted(profile.threads)
    return {
        "magic": MAGIC,
        "version": VERSION,
        "complete": profile.complete,
        "meta": meta_map,
        "frames": frames,
        "stacks": {"parent": profile.stack_parent.tolist(), "frame": profile.stack_frame.tolist()},
        "stats": stats,
        "totals": {
            "alloc_count": profile.totals.alloc_count,
            "alloc_bytes": profile.totals.alloc_bytes,
            "peak_bytes": profile.totals.peak_bytes,
            "peak_ns": profile.totals.peak_ns,
            "leak_bytes": profile.totals.leak_bytes,
            "rss_peak": profile.totals.rss_peak,
        },
        "timeline": {
            "t_ms": profile.timeline.t_ms.tolist(),
            "heap": profile.timeline.heap.tolist(),
            "rss": profile.timeline.rss.tolist(),
        },
        "threads": {"id": thread_ids, "name": [intern(profile.threads[i]) for i in thread_ids]},
        "strings": strings,
    }
