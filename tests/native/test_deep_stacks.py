"""Deep stacks whose consecutive allocations share all but one level: the walk follows the last
walk's frames (and, while the eval hook counts, reads only what moved), so a level that changed
under thousands of unchanged ones must still be read. Exact frames, checked against the lines."""

from __future__ import annotations

import inspect
import sys
import threading
from collections.abc import Callable

import pytest

import memlens
from memlens import _native
from memlens.model import METRICS, Frame, Profile

pytestmark = pytest.mark.no_memlens  # each test runs its own Tracker

MiB = 2**20
DEPTH = 2_000
# Each test runs in a thread whose C stack decides the walk (docs/design.md "Python stacks"): in
# 64 MiB the eval hook counts frames to DEPTH on every version and stacks are kept whole; in
# 2 MiB its C frames reach an eighth of the stack first, it steps aside, and full walks keep the
# innermost 512 frames.
REGIMES = {"hook_counts": (64 * MiB, None), "hook_stepped_aside": (2 * MiB, 512)}


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


def in_thread(stack_bytes: int, body: Callable[[], None]) -> None:
    """body() in a new thread with a C stack of stack_bytes; its exception is raised here."""
    errors: list[BaseException] = []

    def run() -> None:
        try:
            body()
        except BaseException as error:  # noqa: BLE001 - re-raised in the test's thread
            errors.append(error)

    previous = threading.stack_size(stack_bytes)
    try:
        worker = threading.Thread(target=run)
        worker.start()
    finally:
        threading.stack_size(previous)
    worker.join()
    if errors:
        raise errors[0]


def stacks_of(profile: Profile, size: int, count: int) -> list[tuple[Frame, ...]]:
    """The stacks of the rows holding `count` allocations of a `size`-byte bytearray."""
    alloc_bytes = profile.stats.values[:, METRICS.index("alloc_bytes")]
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
def test_alternating_leaves_at_depth_2000_keep_exact_stacks(
    monkeypatch: pytest.MonkeyPatch, regime: str
) -> None:
    stack_bytes, kept = REGIMES[regime]
    monkeypatch.setenv("MEMLENS_CHECK_WALKS", "1")
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(DEPTH + 1_000)
    out: list[bytearray] = []
    lines: list[int] = []

    def body() -> None:
        for i in range(10):
            sink(DEPTH, out, i % 2 == 0)
            lines.append(here() - 1)
            out.clear()

    try:
        with memlens.Tracker() as tracker:
            in_thread(stack_bytes, body)
    finally:
        sys.setrecursionlimit(limit)
    stats = _native.walk_stats()
    assert stats["errors"] == 0  # no fast walk disagreed with a full one
    assert stats["hook_given_up"] == (kept is not None)
    for size, leaf in ((MiB, "LEFT"), (2 * MiB, "RIGHT")):
        (stack,) = stacks_of(tracker.profile, size, 5)
        assert_stack(stack, expected_tail("body", lines[0], DEPTH, leaf), kept)


@pytest.mark.parametrize("regime", REGIMES)
def test_alternating_callers_under_deep_unchanged_frames_keep_exact_stacks(
    monkeypatch: pytest.MonkeyPatch, regime: str
) -> None:
    # Two call sites of one recursion: every frame above them is the same code at the same
    # position and address, only the caller's line differs. A deep call first, so that where
    # the eval hook steps aside it has done so and every walk is a full one following the last.
    stack_bytes, kept = REGIMES[regime]
    monkeypatch.setenv("MEMLENS_CHECK_WALKS", "1")
    depth = 400 if kept is not None else DEPTH  # the callers stay inside the kept frames
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(DEPTH + 1_000)
    out: list[bytearray] = []
    lines: dict[str, int] = {}

    def body() -> None:
        sink(DEPTH, out, False)
        for i in range(10):
            if i % 2:
                sink(depth, out, True)
                lines["odd"] = here() - 1
            else:
                sink(depth, out, True)
                lines["even"] = here() - 1
            out.clear()

    try:
        with memlens.Tracker() as tracker:
            in_thread(stack_bytes, body)
    finally:
        sys.setrecursionlimit(limit)
    stats = _native.walk_stats()
    assert stats["errors"] == 0
    assert stats["hook_given_up"] == (kept is not None)
    stacks = stacks_of(tracker.profile, MiB, 5)
    assert len(stacks) == 2
    by_caller = {stack[-depth - 2].line: stack for stack in stacks}
    assert sorted(by_caller) == sorted(lines.values())
    for line, stack in by_caller.items():
        assert_stack(stack, expected_tail("body", line, depth, "LEFT"), kept)


@pytest.mark.parametrize("setter", [sys.setprofile, sys.settrace])
def test_a_profile_or_trace_function_sees_every_call_while_the_hook_counts(
    monkeypatch: pytest.MonkeyPatch, setter: Callable[..., None]
) -> None:
    # The eval hook runs every frame on the C stack; the program's own profile or trace
    # function must still see each call and return, and the stacks stay exact.
    stack_bytes, kept = REGIMES["hook_counts"]
    monkeypatch.setenv("MEMLENS_CHECK_WALKS", "1")
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(DEPTH + 1_000)
    out: list[bytearray] = []
    events: dict[str, int] = {"call": 0, "return": 0}
    lines: list[int] = []

    def count(frame, event, arg):  # type: ignore[no-untyped-def]
        if frame.f_code is sink.__code__ and event in events:
            events[event] += 1
        return count

    def body() -> None:
        setter(count)
        try:
            sink(DEPTH, out, True)
            lines.append(here() - 1)
        finally:
            setter(None)

    try:
        with memlens.Tracker() as tracker:
            in_thread(stack_bytes, body)
    finally:
        sys.setrecursionlimit(limit)
    assert events == {"call": DEPTH + 1, "return": DEPTH + 1}
    stats = _native.walk_stats()
    assert stats["errors"] == 0 and not stats["hook_given_up"]
    (stack,) = stacks_of(tracker.profile, MiB, 1)
    assert_stack(stack, expected_tail("body", lines[0], DEPTH, "LEFT"), kept)
