"""What the object-snapshot tests profile; each allocating line is found by its marker comment."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any


class Cache:
    entries: dict[int, bytearray] = {}


def fill_cache(n: int) -> None:
    for i in range(n):
        Cache.entries[i] = bytearray(1000)  # FILL


class Pair:
    other: Pair


def make_cycles(n: int) -> None:
    for _ in range(n):
        first, second = Pair(), Pair()  # PAIRS
        first.other, second.other = second, first


def lose_strs_in_a_cycle(n: int) -> None:
    """n strings (untracked: the census reaches them only through the list) in a list that
    holds itself, dropped: a cycle the collector has not freed."""
    box: list[object] = [f"lost-{i:06d}" for i in range(n)]  # LOST_STRS
    box.append(box)


def compile_function(size: int) -> Any:
    """A function compiled here that returns a lambda: the lambda's code object and its bytes
    constant of `size` bytes are held by code objects only (which the collector does not track
    or traverse)."""
    namespace: dict[str, Any] = {}
    source = f"def made():\n    return lambda: b'{'x' * size}'\n"
    exec(compile(source, "<made>", "exec"), namespace)  # COMPILED
    return namespace["made"]


def build_strs(n: int) -> list[str]:
    return [str(i) * 2 for i in range(n)]  # STRS


def numpy_array(n: int) -> Any:
    import numpy as np

    return np.ones(n)  # NUMPY


def numpy_views(n: int) -> tuple[Any, list[Any]]:
    """An array and three views whose buffer pointer is the array's own buffer."""
    import numpy as np

    base = np.ones(n)  # BASE
    views = [base[::2] for _ in range(3)]  # VIEWS
    return base, views


def churn(n: int) -> list[bytes]:
    kept = [bytes(100) for _ in range(n)]  # CHURN
    del kept[::2]
    return kept


def line_of(marker: str) -> int:
    """The line of this file that ends with `# marker`."""
    lines = Path(__file__).read_text().splitlines()
    return next(i for i, text in enumerate(lines, 1) if text.endswith(f"# {marker}"))


def memlens_run(script: Path) -> Path:
    """Run the script under `memlens run` (a real child process); its capture's path."""
    output = script.with_suffix(".msgpack")
    run = subprocess.run(
        [sys.executable, "-m", "memlens", "run", "-o", str(output), str(script)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    return output
