from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

import memlens


@pytest.fixture
def write_capture() -> Callable[[Path, int], None]:
    """Writes a real capture (the tracker's own bytes for a known 1 MiB allocation) with a
    given mtime."""

    def write(path: Path, mtime_ns: int) -> None:
        with memlens.Tracker() as tracker:
            block = bytearray(1024 * 1024)
        del block
        assert tracker.capture_bytes is not None
        path.write_bytes(tracker.capture_bytes)
        os.utime(path, ns=(mtime_ns, mtime_ns))

    return write
