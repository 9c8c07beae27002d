"""The suite's capture writer: a Profile back to the capture map and file that memlens's tracker
writes (natively), so tests can build captures by hand, mutate them and read them again.

memlens itself never writes a capture from Python: the tracker does (native/writer.cpp). This is
the reader's inverse (memlens.capture.from_dict), kept with the tests that need it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

import msgpack
import numpy as np

from memlens.capture import MAGIC, PLAIN_VERSION
from memlens.files import write_atomically
from memlens.measures import COLUMNS, STATS_COLUMNS
from memlens.model import Frame, Meta, Profile
from memlens.snapshots import Snapshot

_REF = COLUMNS.index("ref_count")


def dump(profile: Profile, path: str | os.PathLike[str]) -> None:
    """Write a Profile to a file, whole or not at all."""
    write_atomically(path, dumps(profile))


def dumps(profile: Profile) -> bytes:
    return msgpack.packb(to_dict(profile), use_bin_type=True)


def _snapshots_dict(profile: Profile, intern: Any) -> list[dict[str, Any]]:
    """The `snapshots` list of a capture map (to_dict's part)."""
    return [
        _snapshot_dict(s, intern)
        | (
            {}
            if s.referenced_complete is None
            else {"referenced": _referenced_map(profile, s.referenced_complete)}
        )
        for s in profile.snapshots
    ]


def _snapshot_dict(s: Snapshot, intern: Any) -> dict[str, Any]:
    return {
        "label": s.label,
        "t_ms": s.t_ms,
        "complete": s.complete,
        "objects": {
            "type": [intern(g.type) for g in s.objects],
            "stack": [g.stack for g in s.objects],
            "count": [g.count for g in s.objects],
            "bytes": [g.bytes for g in s.objects],
        },
        "holders": [
            {
                "type": intern(h.type),
                "stack": h.stack,
                "count": h.count,
                "bytes": h.bytes,
                "root": h.root,
                "steps": [{"text": intern(x.text), "stack": x.stack} for x in h.steps],
            }
            for h in s.holders
        ],
    }


def to_dict(profile: Profile) -> dict[str, Any]:
    """The capture map of a Profile (strings interned again)."""
    strings: list[str] = []
    index: dict[str, int] = {}

    def intern(text: str) -> int:
        if text not in index:
            index[text] = len(strings)
            strings.append(text)
        return index[text]

    # interning order (frames, snapshots, allocators, threads) fixes the string table's order
    frames = _frames_map(profile.frames, intern)
    extra = _extra_map(profile, intern)
    thread_ids = sorted(profile.threads)
    return {
        "magic": MAGIC,
        "version": PLAIN_VERSION,
        "complete": profile.complete,
        "meta": _meta_map(profile.meta),
        "frames": frames,
        "stacks": {"parent": profile.stack_parent.tolist(), "frame": profile.stack_frame.tolist()},
        "stats": _stats_map(profile),
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
        **extra,
        "strings": strings,
    }


def _frames_map(frames: Sequence[Frame], intern: Callable[[str], int]) -> dict[str, list[int]]:
    return {
        "function": [intern(f.function) for f in frames],
        "file": [intern(f.file) for f in frames],
        "line": [f.line for f in frames],
        "first_line": [f.first_line for f in frames],
    }


def _stats_map(profile: Profile) -> dict[str, list[int]]:
    stats: dict[str, list[int]] = {
        "stack": profile.stats.stack.tolist(),
        "thread": profile.stats.thread.tolist(),
        "domain": profile.stats.domain.tolist(),
    }
    for column, metric in enumerate(STATS_COLUMNS):
        stats[metric] = profile.stats.values[:, column].tolist()
    return stats


def _referenced_map(profile: Profile, complete: bool) -> dict[str, Any]:
    """A snapshot's `referenced` (to_dict's part): the rows whose ref columns are not 0."""
    values = profile.stats.values
    row = np.flatnonzero(values[:, _REF : _REF + 2].any(axis=1))
    return {
        "complete": complete,
        "row": row.tolist(),
        "count": values[row, _REF].tolist(),
        "bytes": values[row, _REF + 1].tolist(),
    }


def _meta_map(meta: Meta) -> dict[str, Any]:
    meta_map: dict[str, Any] = {
        "argv": meta.argv,
        "pid": meta.pid,
        "python_version": meta.python_version,
        "platform": meta.platform,
        "memlens_version": meta.memlens_version,
        "start_ns": meta.start_ns,
        "end_ns": meta.end_ns,
        "python_allocators": meta.python_allocators,
    }
    if meta.exit_code is not None:
        meta_map["exit_code"] = meta.exit_code
    return meta_map


def _extra_map(profile: Profile, intern: Callable[[str], int]) -> dict[str, Any]:
    """The optional sections: snapshots, allocation sizes, allocators."""
    extra: dict[str, Any] = {}
    if profile.snapshots:
        extra["snapshots"] = _snapshots_dict(profile, intern)
    if profile.sizes is not None:
        sizes = profile.sizes
        extra["sizes"] = {
            "domain": sizes.domain.tolist(),
            "bucket_log2": sizes.bucket_log2.tolist(),
            "count": sizes.count.tolist(),
            "bytes": sizes.bytes.tolist(),
        }
    if profile.allocators is not None:
        extra["allocators"] = {
            "name": [intern(a.name) for a in profile.allocators],
            "count": [a.count for a in profile.allocators],
            "bytes": [a.bytes for a in profile.allocators],
        }
    return extra
