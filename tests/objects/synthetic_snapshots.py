"""A small capture map with two snapshots, built by hand (exact values for the reader's tests
and the fuzz seeds)."""

from __future__ import annotations

from typing import Any

import capture_writer
import numpy as np

from memlens.model import Frame, Meta, Profile, Stats, Timeline, Totals
from memlens.snapshots import Holder, HolderStep, ObjectGroup, Snapshot


def with_snapshots() -> dict[str, Any]:
    """Two stack nodes (app.py:3 <- app.py:9), one stats row, two snapshots (the second cut
    short, with no objects), a run of 2 s."""
    frames = [Frame("<module>", "/app/app.py", 9, 1), Frame("fill", "/app/app.py", 3, 2)]
    values = np.array([[10_000, 10_570_000, 10_000, 10_570_000, 10_000, 10_570_000, 0, 0]])
    profile = Profile(
        complete=True,
        meta=Meta(
            argv=["app.py"],
            pid=1,
            python_version="3.11.7",
            platform="linux-x86_64",
            memlens_version="0.1.0",
            start_ns=1_000_000_000,
            end_ns=3_000_000_000,
            python_allocators=True,
            exit_code=0,
        ),
        frames=frames,
        stack_parent=np.array([-1, 0]),
        stack_frame=np.array([0, 1]),
        stats=Stats(np.array([1]), np.array([0]), np.array([0]), values),
        totals=Totals(10_000, 10_570_000, 10_570_000, 100_000_000, 10_570_000, 0),
        timeline=Timeline(np.array([0]), np.array([0]), np.array([0])),
        threads={0: "MainThread"},
        snapshots=(
            Snapshot(
                "warm",
                100,
                (ObjectGroup("bytearray", 0, 10_000, 10_570_000), ObjectGroup("str", -1, 3, 150)),
                (
                    Holder(
                        "bytearray",
                        0,
                        10_000,
                        10_570_000,
                        "class",
                        (
                            HolderStep("Cache.entries (dict, 10,000 items)", 1),
                            HolderStep("class Cache", -1),
                            HolderStep("module app", -1),
                        ),
                    ),
                ),
                True,
            ),
            Snapshot("exit", 1500, (), (), False),
        ),
    )
    return capture_writer.to_dict(profile)
