"""Captures built by hand (capture.from_dict): exact numbers for tree, threshold and schema logic.
The end-to-end tests use captures made by the real tracker (conftest.py)."""

from __future__ import annotations

from typing import Any

import capture_writer

from memlens import capture, measures
from memlens.model import Profile

Location = tuple[str, str, int, int]  # function, file, line, first_line


class _Stacks:
    """The string, frame and stack tables of a capture, filled as stacks are added."""

    def __init__(self) -> None:
        self.strings: list[str] = []
        self.string_ids: dict[str, int] = {}
        self.frame_ids: dict[Location, int] = {}
        self.frames: dict[str, list[int]] = {
            "function": [],
            "file": [],
            "line": [],
            "first_line": [],
        }
        self.nodes: dict[tuple[int, int], int] = {}
        self.parent: list[int] = []
        self.frame_of: list[int] = []

    def sid(self, text: str) -> int:
        if text not in self.string_ids:
            self.string_ids[text] = len(self.strings)
            self.strings.append(text)
        return self.string_ids[text]

    def stack_id(self, locations: list[Location]) -> int:
        node = -1
        for loc in locations:
            if loc not in self.frame_ids:
                self.frame_ids[loc] = len(self.frame_ids)
                self.frames["function"].append(self.sid(loc[0]))
                self.frames["file"].append(self.sid(loc[1]))
                self.frames["line"].append(loc[2])
                self.frames["first_line"].append(loc[3])
            key = (node, self.frame_ids[loc])
            if key not in self.nodes:
                self.nodes[key] = len(self.parent)
                self.parent.append(node)
                self.frame_of.append(self.frame_ids[loc])
            node = self.nodes[key]
        return node


def capture_dict(
    allocations: list[tuple[list[Location], dict[str, int]]],
    *,
    thread: int = 1,
    domain: int = 0,
    threads: dict[int, str] | None = None,
    peak_ns: int = 500_000_000,
    duration_ns: int = 2_000_000_000,
    exit_code: int | None = 0,
    timeline: tuple[list[int], list[int], list[int]] | None = None,
    rows: list[tuple[list[Location], int, int, dict[str, int]]] | None = None,
) -> dict[str, Any]:
    """A capture map: one stats row per (stack caller->callee, values). `rows` adds rows with an
    explicit (stack, thread, domain); an empty stack means "no Python frame" (stack -1)."""
    table = _Stacks()
    all_rows = [(stack, thread, domain, values) for stack, values in allocations] + (rows or [])
    stats: dict[str, list[int]] = {
        key: [] for key in ("stack", "thread", "domain", *measures.COLUMNS)
    }
    for stack, row_thread, row_domain, values in all_rows:
        stats["stack"].append(table.stack_id(stack))
        stats["thread"].append(row_thread)
        stats["domain"].append(row_domain)
        for metric in measures.COLUMNS:
            stats[metric].append(values.get(metric, 0))
    peak = sum(stats["peak_bytes"])
    names = threads or {thread: "MainThread"}
    t_ms, heap, rss = timeline or (
        [0, 500, 1000],
        [0, peak, 0],
        [10_000_000, 10_000_000 + peak, 10_000_000],
    )
    return {
        "magic": capture.MAGIC,
        "version": capture.PLAIN_VERSION,
        "complete": True,
        "meta": _meta(duration_ns, exit_code),
        "strings": table.strings + [n for n in names.values() if n not in table.string_ids],
        "frames": table.frames,
        "stacks": {"parent": table.parent, "frame": table.frame_of},
        "stats": stats,
        "totals": {
            "alloc_count": sum(stats["alloc_count"]),
            "alloc_bytes": sum(stats["alloc_bytes"]),
            "peak_bytes": peak,
            "peak_ns": peak_ns,
            "leak_bytes": sum(stats["leak_bytes"]),
            "rss_peak": max(rss, default=0),
        },
        "timeline": {"t_ms": t_ms, "heap": heap, "rss": rss},
        "threads": {"id": [], "name": []},
        "_thread_names": names,
    }


def _meta(duration_ns: int, exit_code: int | None) -> dict[str, Any]:
    return {
        "argv": ["prog.py", "--flag"],
        "pid": 42,
        "python_version": "3.11.2",
        "platform": "linux",
        "memlens_version": "0.1.0",
        "start_ns": 1_700_000_000_000_000_000,
        "end_ns": 1_700_000_000_000_000_000 + duration_ns,
        "python_allocators": True,
        "native_traces": False,
        **({"exit_code": exit_code} if exit_code is not None else {}),
    }


def build(allocations: list[tuple[list[Location], dict[str, int]]], **kwargs: Any) -> Profile:
    raw = capture_dict(allocations, **kwargs)
    names: dict[int, str] = raw.pop("_thread_names")
    strings: list[str] = raw["strings"]
    raw["threads"] = {"id": list(names), "name": [strings.index(n) for n in names.values()]}
    return capture.from_dict(raw)


def values(
    peak: int = 0,
    alloc: int | None = None,
    count: int = 1,
    leak: int = 0,
    temp: int = 0,
    temp_count: int | None = None,
) -> dict[str, int]:
    """Stats for `count` allocations: `peak` bytes live at the peak, `alloc` over the run;
    leaked or temporary bytes are of all `count` allocations unless temp_count says."""
    alloc = peak if alloc is None else alloc
    return {
        "alloc_count": count,
        "alloc_bytes": alloc,
        "peak_count": count if peak else 0,
        "peak_bytes": peak,
        "leak_count": count if leak else 0,
        "leak_bytes": leak,
        "temp_count": (count if temp else 0) if temp_count is None else temp_count,
        "temp_bytes": temp,
    }


MAIN = ("<module>", "/app/main.py", 10, 1)
LOAD = ("load", "/app/main.py", 5, 3)
PARSE = ("parse", "/app/lib.py", 20, 18)
JSON = ("decode", "/usr/lib/python3.11/json/decoder.py", 353, 340)
BOOT = ("_find_and_load", "<frozen importlib._bootstrap>", 1178, 1165)


def example() -> Profile:
    """main -> load -> parse (6 MiB at peak), main -> load (2 MiB), main -> json (1 MiB, leaked),
    an import (512 KiB), and 4 KiB with no Python frame; two threads."""
    mib = 2**20
    return build(
        [
            ([MAIN, LOAD, PARSE], values(peak=6 * mib, alloc=10 * mib, count=3)),
            ([MAIN, LOAD], values(peak=2 * mib, count=2)),
            ([MAIN, JSON], values(peak=1 * mib, count=100, leak=1 * mib)),
            (
                [MAIN, BOOT],
                values(peak=512 * 1024, alloc=768 * 1024, count=7, temp=256 * 1024, temp_count=2),
            ),
        ],
        rows=[
            ([], 2, 1, values(peak=4096, count=1)),
            ([MAIN, LOAD, PARSE], 2, 2, values(peak=0, alloc=64 * mib, count=1, temp=64 * mib)),
        ],
        threads={1: "MainThread", 2: "worker"},
    )


def many_stacks(n_stacks: int = 100_000, seed: int = 7) -> dict[str, Any]:
    """A capture map with `n_stacks` distinct stacks in a deep, bushy trie (up to ~40 frames,
    5,000 locations in 500 files, three threads and domains), sizes spread over 16 B .. 16 MiB."""
    import numpy as np

    rng = np.random.default_rng(seed)
    n_files, n_frames = 500, 5000
    strings = [f"/proj/pkg{i % 50}/module_{i}.py" for i in range(n_files)]
    strings += [f"function_{i}" for i in range(n_frames)]
    strings += ["MainThread", "worker-1", "worker-2"]
    frame_file = rng.integers(0, n_files, n_frames)
    frame_function = n_files + np.arange(n_frames)
    frame_line = rng.integers(1, 2000, n_frames)
    n_nodes = int(n_stacks * 1.3)
    parent = _bushy_trie(rng, n_nodes)
    stats = _random_stats(rng, n_stacks, n_nodes)
    peak = sum(stats["peak_bytes"])
    t_ms = list(range(0, 60_000, 10))
    heap = (np.sin(np.arange(len(t_ms)) / 300) ** 2 * peak).astype(np.int64).tolist()
    return {
        "magic": capture.MAGIC,
        "version": capture.PLAIN_VERSION,
        "complete": True,
        "meta": {"argv": ["big.py"], "pid": 1, "start_ns": 0, "end_ns": 60 * 10**9, "exit_code": 0},
        "strings": strings,
        "frames": {
            "function": frame_function.tolist(),
            "file": frame_file.tolist(),
            "line": frame_line.tolist(),
            "first_line": frame_line.tolist(),
        },
        "stacks": {"parent": parent, "frame": rng.integers(0, n_frames, n_nodes).tolist()},
        "stats": stats,
        "totals": {
            "alloc_count": sum(stats["alloc_count"]),
            "alloc_bytes": sum(stats["alloc_bytes"]),
            "peak_bytes": peak,
            "peak_ns": 30 * 10**9,
            "leak_bytes": sum(stats["leak_bytes"]),
            "rss_peak": peak * 2,
        },
        "timeline": {"t_ms": t_ms, "heap": heap, "rss": heap},
        "threads": {
            "id": [1, 2, 3],
            "name": [len(strings) - 3, len(strings) - 2, len(strings) - 1],
        },
    }


def _bushy_trie(rng: Any, n_nodes: int) -> list[int]:
    """Parents of a trie where each new node hangs under a recent node, so stacks share long
    prefixes; no path is deeper than about 40."""
    import numpy as np

    parent = np.empty(n_nodes, dtype=np.int64)
    depth = np.zeros(n_nodes, dtype=np.int64)
    parent[:20] = -1
    for node in range(20, n_nodes):
        p = node - 1 - int(rng.integers(0, min(node, 200)))
        if depth[p] >= 40:
            p = int(parent[p])
        parent[node] = p
        depth[node] = depth[p] + 1 if p >= 0 else 0
    result: list[int] = parent.tolist()
    return result


def _random_stats(rng: Any, n_stacks: int, n_nodes: int) -> dict[str, list[int]]:
    """Stats rows for `n_stacks` distinct nodes of the trie."""
    import numpy as np

    stack = np.sort(rng.choice(n_nodes, n_stacks, replace=False))
    count = rng.integers(1, 1000, n_stacks)
    size = (2.0 ** rng.uniform(4, 24, n_stacks)).astype(np.int64)
    alloc = count * size
    peak = np.where(rng.random(n_stacks) < 0.5, size * rng.integers(0, 3, n_stacks), 0)
    peak = np.minimum(peak, alloc)  # live at the peak, never more than allocated (capture.py)
    leak = np.where(rng.random(n_stacks) < 0.1, size, 0)
    return {
        "stack": stack.tolist(),
        "thread": rng.integers(1, 4, n_stacks).tolist(),
        "domain": rng.integers(0, 3, n_stacks).tolist(),
        "alloc_count": count.tolist(),
        "alloc_bytes": alloc.tolist(),
        "peak_count": (peak > 0).astype(np.int64).tolist(),
        "peak_bytes": peak.tolist(),
        "leak_count": (leak > 0).astype(np.int64).tolist(),
        "leak_bytes": leak.tolist(),
        "temp_count": (count // 2).tolist(),
        "temp_bytes": (count // 2 * size).tolist(),
    }


def with_referenced(profile: Profile, part: int, complete: bool = True) -> Profile:
    """The profile with an exit snapshot whose mark says `part` of each leaking row's bytes
    (and one of its blocks) are still referenced."""
    raw = capture_writer.to_dict(profile)
    leak_bytes = raw["stats"]["leak_bytes"]
    rows = [i for i, size in enumerate(leak_bytes) if size]
    raw["snapshots"] = [
        {
            "label": "exit",
            "t_ms": 0,
            "complete": True,
            "objects": {"type": [], "stack": [], "count": [], "bytes": []},
            "holders": [],
            "referenced": {
                "complete": complete,
                "row": rows,
                "count": [1] * len(rows),
                "bytes": [min(part, leak_bytes[i]) for i in rows],
            },
        }
    ]
    return capture.from_dict(raw)
