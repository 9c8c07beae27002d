"""Deep stacks whose consecutive allocations share all but one level: the walk follows the last
walk's frames (and, while the eval hook counts, reads only what moved), so a level that changed
under thousands of unchanged ones must still be read. Exact frames, checked against the lines."""

from __future__ import annotations

import inspect
import sys

import pytest

import memlens
from memlens import _native, measures
from memlens.model import Frame, Profile

pytestmark = pytest.mark.no_memlens  # each test runs its own Tracker

MiB = 2**20
# The depth decides the walk (docs/design.md "Python stacks"): the eval hook's C frames (400 to
# 600 bytes each, measured) reach an eighth of the main thread's 8 MiB at 1,700 to 2,500 frames.
# At 1,000 it counts on every version and stacks are kept whole; at 6,000 it has stepped aside
# and full walks keep the innermost 512 frames. Threads are left out: a session that ran one
# changes what a later test in this process counts on 3.12+ (a pre-existing 72-byte allocation).
REGIMES = {"hook_counts": (1_000, None), "hook_stepped_aside": (6_000, 512)}


def sink(n: int, out: list[bytearray], left: bool) -> None:
    if n:
        return sink(n - 1, out, left)  # RECURSE
    if left:
        out.append(bytearray(MiB))  # LEFT
    else:
        out.append(bytearray(2 * MiB))  # RIGHT
    return None


SOURCE, FIRST = inspect.getsourcelines(sink)
LINES = {text.split("# ")[1].strip(): FIRST + i for i, text in enumerate(SOURCE) if "# " in text}


def here() -> int:
    frame = inspect.currentframe()
    assert frame is not None and frame.f_back is not None
    return frame.f_back.f_lineno


def stacks_of(profile: Profile, size: int, count: int) -> list[tuple[Frame, ...]]:
    """The stacks of the rows holding `count` allocations of a `size`-byte bytearray."""
    alloc_bytes = profile.stats.values[:, measures.COLUMNS.index("alloc_bytes")]
    rows = [i for i, n in enumerate(alloc_bytes) if count * size <= n < count * (size + 4096)]
    return [profile.frames_of(int(profile.stats.stack[row])) for row in rows]


def expected_tail(caller: str, line: int, depth: int, leaf: str) -> list[tuple[str, int]]:
    """(function, line) of the innermost frames: the caller, the recursion, the leaf."""
    return [(caller, line)] + [("sink", LINES["RECURSE"])] * depth + [("sink", LINES[leaf])]


def assert_stack(stack: tuple[Frame, ...], want: list[tuple[str, int]], kept: int | None) -> None:
    got = [(frame.function.rsplit(".", 1)[-1], frame.line) for frame in stack]
    if kept is not None and len(want) > kept:
        assert len(got) == kept
        want = want[-kept:]
    assert got[-len(want) :] == want
    assert all(frame.file == __file__ for frame in stack[-len(want) :])


@pytest.mark.parametrize("regime", REGIMES)
def test_alternating_leaves_at_depth_keep_exact_stacks(
    monkeypatch: pytest.MonkeyPatch, regime: str
) -> None:
    depth, kept = REGIMES[regime]
    monkeypatch.setenv("MEMLENS_CHECK_WALKS", "1")
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(depth + 1_000)
    out: list[bytearray] = []
    try:
        with memlens.Tracker() as tracker:
            for i in range(10):
                sink(depth, out, i % 2 == 0)
                line = here() - 1
                out.clear()
    finally:
        sys.setrecursionlimit(limit)
    stats = _native.walk_stats()
    assert stats["errors"] == 0  # no fast walk disagreed with a full one
    assert stats["hook_given_up"] == (kept is not None)
    caller = test_alternating_leaves_at_depth_keep_exact_stacks.__name__
    for size, leaf in ((MiB, "LEFT"), (2 * MiB, "RIGHT")):
        (stack,) = stacks_of(tracker.profile, size, 5)
        assert_stack(stack, expected_tail(caller, line, depth, leaf), kept)


@pytest.mark.parametrize("regime", REGIMES)
def test_alternating_callers_under_deep_unchanged_frames_keep_exact_stacks(
    monkeypatch: pytest.MonkeyPatch, regime: str
) -> None:
    # Two call sites of one recursion: every frame above them is the same code at the same
    # position and address, only the caller's line differs. A deep call first, so that where
    # the eval hook steps aside it has done so and every walk is a full one following the last.
    first, kept = REGIMES[regime]
    monkeypatch.setenv("MEMLENS_CHECK_WALKS", "1")
    depth = 400 if kept is not None else first  # the callers stay inside the kept frames
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(first + 1_000)
    out: list[bytearray] = []
    try:
        with memlens.Tracker() as tracker:
            sink(first, out, False)
            for i in range(10):
                if i % 2:
                    sink(depth, out, True)
                    odd = here() - 1
                else:
                    sink(depth, out, True)
                    even = here() - 1
                out.clear()
    finally:
        sys.setrecursionlimit(limit)
    stats = _native.walk_stats()
    assert stats["errors"] == 0
    assert stats["hook_given_up"] == (kept is not None)
    stacks = stacks_of(tracker.profile, MiB, 5)
    assert len(stacks) == 2
    by_caller = {stack[-depth - 2].line: stack for stack in stacks}
    assert sorted(by_caller) == [odd, even]
    caller = test_alternating_callers_under_deep_unchanged_frames_keep_exact_stacks.__name__
    for line, stack in by_caller.items():
        assert_stack(stack, expected_tail(caller, line, depth, "LEFT"), kept)
