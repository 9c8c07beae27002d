"""The bench's workloads: `python bench/workloads.py NAME` runs one (each ~0.3-0.6 s unprofiled).

Each stresses one thing a memory profiler pays for: many allocations of Python objects, many
calls that allocate little, big native buffers, strings, deep stacks, threads.
"""

from __future__ import annotations

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


WORKLOADS: dict[str, Callable[[], None]] = {
    "objects": objects,
    "calls": calls,
    "arrays": arrays,
    "strings": strings,
    "small": small,
    "deep": deep,
    "threads": threads,
}

if __name__ == "__main__":
    WORKLOADS[sys.argv[1]]()
