"""`--fail-on-increase`: each test's peak from the previous run, kept in pytest's cache.

The peaks of the tests that passed are stored under `memlens/peaks` in the cache directory
(`.pytest_cache` by default) at the end of a run; the next run fails a tracked test whose peak
is higher than the one stored for it. Tests that failed keep their previous peak.
"""

from __future__ import annotations

from typing import Any

from memlens.units import format_bytes

CACHE_KEY = "memlens/peaks"


class PeakHistory:
    """The previous run's peaks (read once, at the start) and this run's."""

    def __init__(self, cache: Any) -> None:
        self.cache = cache
        stored = cache.get(CACHE_KEY, {})
        # a hand-edited or foreign cache entry is ignored, not trusted
        self.previous: dict[str, int] = {
            nodeid: peak
            for nodeid, peak in (stored.items() if isinstance(stored, dict) else ())
            if isinstance(nodeid, str) and isinstance(peak, int) and not isinstance(peak, bool)
        }
        self.current: dict[str, int] = {}

    def increase(self, nodeid: str, peak_bytes: int) -> str | None:
        """The failure message if the test's peak grew since the previous run, else None."""
        before = self.previous.get(nodeid)
        if before is None or peak_bytes <= before:
            return None
        return (
            f"Test's peak grew from {_exact(before)} to {_exact(peak_bytes)} since the previous "
            f"run (+{peak_bytes - before} B; --fail-on-increase)"
        )

    def record(self, nodeid: str, peak_bytes: int) -> None:
        self.current[nodeid] = peak_bytes

    def save(self) -> None:
        self.cache.set(CACHE_KEY, self.previous | self.current)


def _exact(size: int) -> str:
    return format_bytes(size) if size < 1024 else f"{format_bytes(size)} ({size} B)"
