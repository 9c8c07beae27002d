"""The bench's workloads: `python bench/workloads.py NAME` runs one (each ~0.1-0.6 s unprofiled).

Each stresses one thing a memory profiler pays for: many allocations of Python objects, many
calls that allocate little, big native buffers, strings, deep stacks, threads; then the cases
measurement found weak (medium objects among reference cycles with the collector off, JSON,
a recursion 50,000 frames deep) and real libraries with varied stacks (sympy, pandas: skipped,
with a line saying so, where they are not installed: `make bench` installs them).
"""

from __future__ import annotations

import gc
import json
import sys
import threading
from collections.abc import Callable


class Point:
    def __init__(self, x: int, y: int) -> None:
        self.x = x
        self.y = y
        self.tags = {"x": x, "y": y}


def objects() -> None:
    """Allocation-heavy pure Python: records as objects and dicts, grouped, then dropped."""
    for _ in range(4):
        points = [Point(i, i * 2) for i in range(60_000)]
        groups: dict[int, list[Point]] = {}
        for p in points:
            groups.setdefault(p.x % 1000, []).append(p)
        del points, groups


def fib(n: int) -> int:
    return n if n < 2 else fib(n - 1) + fib(n - 2)


def calls() -> None:
    """Call-heavy recursion that allocates almost nothing (small ints are cached)."""
    fib(31)


def arrays() -> None:
    """Big numpy arrays: allocation size matters, count does not."""
    import numpy as np

    total = 0.0
    for i in range(20):
        a = np.ones(2_000_000, dtype=np.float64) * i
        b = np.zeros_like(a)
        b += a
        total += float(b[::1000].sum())
    assert total > 0


def strings() -> None:
    """String building: f-strings, joins, concatenation, splitting."""
    for _ in range(10):
        parts = [f"{i}:{i * i:x}" for i in range(60_000)]
        text = ",".join(parts)
        words = text.split(",")
        line = ""
        for word in words[:20_000]:
            line += word
        del parts, text, words, line


def small() -> None:
    """Many small, short-lived objects: tuples, floats, lists."""
    acc = 0.0
    for i in range(2_000_000):
        pair = (i, float(i))
        acc += pair[1] + len([i])
    assert acc > 0


def descend(depth: int, rounds: int) -> int:
    if depth:
        return descend(depth - 1, rounds)
    made = 0
    for i in range(rounds):
        made += len(str(i) * 3)
    return made


def deep() -> None:
    """Allocations at the bottom of a 150-frame stack, from several call sites."""
    for _ in range(600):
        descend(150, 2_000)


def threads() -> None:
    """Four threads building lists and dicts at once."""

    def work(seed: int) -> None:
        for _ in range(5):
            table = {i: [i, seed, str(i)] for i in range(40_000)}
            del table

    workers = [threading.Thread(target=work, args=(n,), name=f"bench-{n}") for n in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()


class Node:
    def __init__(self, payload: bytes) -> None:
        self.payload = payload
        self.partner: Node | None = None


def cycles() -> None:
    """Medium objects (1-8 KiB) kept alive while the collector is off and tens of thousands of
    small reference cycles are made, with transient string work around them."""
    gc.disable()
    try:
        kept = []
        for i in range(20_000):
            kept.append(bytes(1024 + (i * 97) % 7168))
            a, b = Node(b"a"), Node(b"b")
            a.partner, b.partner = b, a
            label = f"node-{i}-" + "x" * (i % 50)
            kept.append(label.upper()[:8])
        del kept
    finally:
        gc.enable()
        gc.collect()


def json_round_trips() -> None:
    """Encode and decode nested documents."""
    document = {
        "users": [
            {
                "id": i,
                "name": f"user{i}",
                "tags": ["a", "b", str(i)],
                "score": i / 3,
                "address": {"street": f"{i} Main St", "zip": f"{i:05d}"},
            }
            for i in range(2_000)
        ]
    }
    for _ in range(4):
        text = json.dumps(document)
        document = json.loads(text)


def climb(depth: int) -> int:
    kept = [depth]  # a small list at every level
    return len(kept) + (climb(depth - 1) if depth else 0)


def recursion() -> None:
    """A recursion 50,000 frames deep in a thread with a large stack, three times."""
    sys.setrecursionlimit(60_000)
    threading.stack_size(512 * 2**20)
    for _ in range(3):
        worker = threading.Thread(target=climb, args=(50_000,))
        worker.start()
        worker.join()


def sympy_algebra() -> None:
    """A real library with deep, varied pure-Python stacks: expand and simplify."""
    try:
        import sympy
    except ImportError:
        print("sympy is not installed: workload skipped", file=sys.stderr)
        return
    x, y, z = sympy.symbols("x y z")
    expanded = sympy.expand((x + y + z + 1) ** 12)
    sympy.factor(sympy.expand((x + 1) ** 8 * (y - 2) ** 4))
    sympy.simplify((x**2 - 1) / (x - 1) + sympy.sin(x) ** 2 + sympy.cos(x) ** 2)
    assert expanded.has(x)


def pandas_frames() -> None:
    """A merge and a groupby of 500,000 rows."""
    try:
        import numpy as np
        import pandas as pd
    except ImportError:
        print("pandas is not installed: workload skipped", file=sys.stderr)
        return
    rows = 500_000
    rng = np.random.default_rng(0)
    left = pd.DataFrame({"key": rng.integers(0, 10_000, rows), "value": rng.random(rows)})
    right = pd.DataFrame({"key": np.arange(10_000), "name": [f"k{i}" for i in range(10_000)]})
    merged = left.merge(right, on="key")
    summary = merged.groupby("name")["value"].agg(["sum", "mean", "count"])
    assert len(summary) > 0


WORKLOADS: dict[str, Callable[[], None]] = {
    "objects": objects,
    "calls": calls,
    "arrays": arrays,
    "strings": strings,
    "small": small,
    "deep": deep,
    "threads": threads,
    "cycles": cycles,
    "json": json_round_trips,
    "recursion": recursion,
    "sympy": sympy_algebra,
    "pandas": pandas_frames,
}

if __name__ == "__main__":
    WORKLOADS[sys.argv[1]]()
