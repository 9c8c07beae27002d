"""Memory live at exit, split by the exit snapshot into still referenced (reachable from module
globals, class attributes, running frames or C globals) and lost (native/reach.h), through the
real tracker: `memlens run` on scripts/referenced_at_exit.py, and a Tracker in a function."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
from run_helpers import line_of, memlens_run

import memlens
from memlens import capture
from memlens.model import LineStats, Profile

SCRIPT = Path(__file__).parent / "scripts" / "referenced_at_exit.py"
BYTEARRAY_1000 = sys.getsizeof(bytearray(1000))  # its object and its 1,001-byte buffer
BYTEARRAY_2000 = sys.getsizeof(bytearray(2000))


@pytest.fixture(scope="module")
def run(clib: Any, tmp_path_factory: pytest.TempPathFactory) -> Profile:
    folder = tmp_path_factory.mktemp("referenced")
    output = folder / "run.msgpack"
    memlens_run("-o", str(output), str(SCRIPT), clib._name, cwd=folder)
    return capture.load(output)


def line(profile: Profile, marker: str) -> LineStats:
    stats = profile.lines.line(str(SCRIPT), line_of(SCRIPT, marker))
    assert stats is not None, marker
    return stats


def split(usage: Any) -> tuple[int, int, int]:
    """(live at exit, still referenced, lost) bytes."""
    return usage.leak_bytes, usage.get("ref_bytes"), usage.get("lost_bytes")


def test_a_module_global_is_still_referenced_not_lost(run: Profile) -> None:
    assert run.referenced_at_exit is True
    usage = line(run, "module_global").self
    live, referenced, lost = split(usage)
    # 100 bytearrays of 1,057 B (object and buffer), the list's item array (the list object
    # itself comes from the interpreter's free list)
    assert live >= 100 * BYTEARRAY_1000
    assert (referenced, lost) == (live, 0)
    assert usage.get("lost_count") == 0 and usage.ref_count == usage.leak_count >= 200


def test_a_class_attribute_is_still_referenced(run: Profile) -> None:
    usage = line(run, "class_attribute").self
    live, referenced, lost = split(usage)
    # 10 bytearrays of 2,057 B, and the dict's table as it grew (a few hundred bytes)
    assert 10 * BYTEARRAY_2000 <= live < 10 * BYTEARRAY_2000 + 1024
    assert (referenced, lost) == (live, 0)
    assert usage.ref_count == usage.leak_count >= 20


def test_a_dropped_c_buffer_is_lost(run: Profile) -> None:
    usage = line(run, "lost_malloc").self
    assert split(usage) == (100_000, 0, 100_000)
    assert (usage.leak_count, usage.ref_count) == (1, 0)


def test_an_uncollected_cycle_is_lost(run: Profile) -> None:
    usage = line(run, "cycle").self
    live, referenced, lost = split(usage)
    assert referenced == 0 and lost == live >= BYTEARRAY_1000
    function = run.lines.line(str(SCRIPT), line_of(SCRIPT, "cycle") + 1)
    assert function is not None and function.self.get("ref_bytes") == 0  # the append's array


def test_the_summary_and_json_split_the_same_way(run: Profile) -> None:
    from memlens.reports import json_report, summary

    shown = summary.build(run)
    totals = json_report.build(run)["totals"]
    sums = run.stats.values.sum(axis=0)
    assert shown["referenced_bytes"] == totals["referenced_bytes"] == int(sums[-1])
    assert shown["lost_bytes"] == totals["lost_bytes"] == int(sums[5] - sums[-1])
    assert shown["referenced_complete"] is True
    assert shown["lost_bytes"] >= 100_000 + BYTEARRAY_1000


def test_a_running_frames_locals_are_still_referenced() -> None:
    with memlens.Tracker(None) as tracker:
        kept = bytearray(10_000)
    profile = tracker.profile
    sums = profile.stats.values.sum(axis=0)
    assert profile.referenced_at_exit is True
    # the local's object and buffer: live when tracking stopped, and reachable from this frame
    assert int(sums[5]) == int(sums[-1]) == sys.getsizeof(kept)


def test_without_the_exit_snapshot_nothing_is_split(tmp_path: Path) -> None:
    with memlens.Tracker(None, snapshot_at_exit=False) as tracker:
        kept = bytearray(10_000)
    profile = tracker.profile
    assert profile.referenced_at_exit is None
    assert profile.exit_split()["lost_bytes"] is None
    assert int(profile.stats.values.sum(axis=0)[-1]) == 0 and len(kept) == 10_000
