"""Captures built by hand (capture.from_dict): exact numbers for tree, threshold and schema logic.
The end-to-end tests use captures made by the real tracker (conftest.py)."""

from __future__ import annotations

from typing import Any

from memlens import capture
from memlens.model import METRICS, Profile

Location = tuple[str, str, int, int]  # function, file, line, first_line


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
    strings: list[str] = []
    string_ids: dict[str, int] = {}
    frame_ids: dict[Location, int] = {}
    frames: dict[str, list[int]] = {"function": [], "file": [], "line": [], "first_line": []}
    nodes: dict[tuple[int, int], int] = {}
    parent: list[int] = []
    frame_of: list[int] = []

    def sid(text: str) -> int:
        if text not in string_ids:
            string_ids[text] = len(strings)
            strings.append(text)
        return string_ids[text]

    def stack_id(locations: list[Location]) -> int:
        node = -1
        for loc in locations:
            if loc not in frame_ids:
                frame_ids[loc] = len(frame_ids)
                frames["function"].append(sid(loc[0]))
                frames["file"].append(sid(loc[1]))
                frames["line"].append(loc[2])
                frames["first_line"].append(loc[3])
            key = (node, frame_ids[loc])
            if key not in nodes:
                nodes[key] = len(parent)
                parent.append(node)
                frame_of.append(frame_ids[loc])
            node = nodes[key]
        return node

    all_rows = [(stack, thread, domain, values) for stack, values in allocations] + (rows or [])
    stats: dict[str, list[int]] = {key: [] for key in ("stack", "thread", "domain", *METRICS)}
    for stack, row_thread, row_domain, values in all_rows:
        stats["stack"].append(stack_id(stack))
        stats["thread"].append(row_thread)
        stats["domain"].append(row_domain)
        for metric in METRICS:
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
        "version": capture.VERSION,
        "complete": True,
        "meta": {
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
        },
        "strings": strings + [n for n in names.values() if n not in string_ids],
        "frames": frames,
        "stacks": {"parent": parent, "frame": frame_of},
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


def build(allocations: list[tuple[list[Location], dict[str, int]]], **kwargs: Any) -> Profile:
    raw = capture_dict(allocations, **kwargs)
    names: dict[int, str] = raw.pop("_thread_names")
    strings: list[str] = raw["strings"]
    raw["threads"] = {"id": list(names), "name": [strings.index(n) for n in names.values()]}
    return capture.from_dict(raw)


def values(
    peak: int = 0, alloc: int | None = None, count: int = 1, leak: int = 0, temp: int = 0
) -> dict[str, int]:
    """Stats for `count` allocations: `peak` bytes live at the peak, `alloc` over the run."""
    alloc = peak if alloc is None else alloc
    return {
        "alloc_count": count,
        "alloc_bytes": alloc,
        "peak_count": count if peak else 0,
        "peak_bytes": peak,
        "leak_count": count if leak else 0,
        "leak_bytes": leak,
        "temp_count": count if temp else 0,
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
            ([MAIN, BOOT], values(peak=512 * 1024, alloc=768 * 1024, count=7, temp=256 * 1024)),
        ],
        rows=[
            ([], 2, 1, values(peak=4096, count=1)),
            ([MAIN, LOAD, PARSE], 2, 2, values(peak=0, alloc=64 * mib, count=1, temp=64 * mib)),
        ],
        threads={1: "MainThread", 2: "worker"},
    )
