"""The checks behind `@pytest.mark.limit_memory`, `@pytest.mark.limit_leaks` and
`@pytest.mark.limit_leaked_objects`.

Plain functions over a `Profile` (nothing here knows pytest's hooks), so they are tested without
running pytest: `parse_limit` reads the marker's size, `own_profile` keeps the test's own part of
a capture, `memory_failure` / `leak_failure` return the failure message, or None when the test
kept to its limit.

Which allocations are the test's (`Scope`): on the thread that ran the test, those made under
a frame of the test function (so pytest's bookkeeping and other plugins' hook wrappers around the
call are not charged to it); on other threads, those not made by pytest, pluggy or xdist, unless
`current_thread_only`. The test's thread is the one the test function's frames are on, or the
one with the name of the thread that ran the test. Without a test function (doctests, other
items) the test thread's allocations below pytest's frames count.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import CodeType
from typing import TYPE_CHECKING, NamedTuple

from memlens import measures, origins
from memlens.units import format_bytes, parse_size

if TYPE_CHECKING:  # the model pulls numpy; the plugin loads in every pytest run
    import numpy as np

    from memlens.model import Frame, Profile, StackUsage


@dataclass(frozen=True)
class Limit:
    """A size limit as the user wrote it, and in bytes."""

    bytes: int
    text: str  # "10 MB (10485760 B)": the user's words, then the exact byte count


def parse_limit(value: object) -> Limit:
    """A marker's size ("10 MB", "1.5 GiB", 4096) as a Limit; ValueError says what is accepted."""
    size = parse_size(value)
    words = " ".join(value.split()) if isinstance(value, str) else ""
    exact = f"{size} B"
    return Limit(size, exact if words in ("", exact) else f"{words} ({exact})")


class StackFrame(NamedTuple):
    """One frame of a leaking stack, as `limit_leaks(filter_fn=...)` receives it."""

    function: str
    filename: str
    lineno: int


@dataclass(frozen=True)
class Stack:
    """What filter_fn receives: `.frames` innermost first (the line that allocated), as in
    pytest-memray, so its users' filter functions run unchanged."""

    frames: tuple[StackFrame, ...]


LeakFilter = Callable[[Stack], bool]


class Focus(NamedTuple):
    """The test function, as its frames appear in a capture."""

    file: str
    first_line: int  # the code object's co_firstlineno
    name: str  # co_name (a capture names frames by qualified name)

    @classmethod
    def of(cls, code: CodeType | None) -> Focus | None:
        return None if code is None else cls(code.co_filename, code.co_firstlineno, code.co_name)

    def matches(self, frame: Frame) -> bool:
        return (
            frame.first_line == self.first_line
            and frame.file == self.file
            and frame.function.rpartition(".")[2] == self.name
        )


@dataclass(frozen=True)
class Scope:
    """Which allocations of a capture are the test's (see the module's docstring)."""

    focus: Focus | None = None  # the test function
    thread_name: str = "MainThread"  # the name of the thread that runs the test
    current_thread_only: bool = False


@dataclass(frozen=True)
class Listing:
    """How much of a failure's stacks is shown: None for all."""

    stacks: int | None = 3
    frames: int | None = 5  # innermost frames per stack

    @classmethod
    def for_verbosity(cls, verbosity: int, frames: int | None = None) -> Listing:
        """-q: 1 stack of 1 frame; default 3 of 5; -v: 10 of 10; -vv: everything. `frames`
        (--stacks N) overrides the frames per stack."""
        stacks, default_frames = {-1: (1, 1), 0: (3, 5), 1: (10, 10)}.get(
            max(verbosity, -1), (None, None)
        )
        return cls(stacks, default_frames if frames is None else frames)


DEFAULT_LISTING = Listing()


@dataclass(frozen=True)
class OwnUsage:
    """A test's own numbers: its allocations only, not pytest's bookkeeping around the call."""

    peak_bytes: int  # live at the high-watermark
    alloc_bytes: int
    alloc_count: int
    leak_bytes: int  # still live when tracking stopped


def own_profile(profile: Profile, scope: Scope) -> Profile:
    """The capture with only the test's rows (see Scope); stacks, frames and totals unchanged."""
    return profile.with_rows(own_rows(profile, scope))


def own_usage(profile: Profile) -> OwnUsage:
    """The sums of a test profile's rows."""

    sums = profile.stats.values.sum(axis=0)
    column = {metric: int(sums[i]) for i, metric in enumerate(measures.COLUMNS)}
    return OwnUsage(
        column["peak_bytes"], column["alloc_bytes"], column["alloc_count"], column["leak_bytes"]
    )


def own_rows(profile: Profile, scope: Scope) -> np.ndarray:
    """For every stats row: is it the test's?"""
    import numpy as np

    stack = profile.stats.stack
    with_stack = stack >= 0
    harness_own = np.ones(len(stack), dtype=bool)  # a row without a Python frame: a native thread
    harness_own[with_stack] = own_nodes(profile)[stack[with_stack]]
    in_focus = np.zeros(len(stack), dtype=bool)
    if scope.focus is not None:
        in_focus[with_stack] = focus_nodes(profile, scope.focus)[stack[with_stack]]
    # The test's thread: the one the test function ran on, or that has the test thread's name
    # (an empty test leaves no row of its own).
    named = [thread for thread, name in profile.threads.items() if name == scope.thread_name]
    test_threads = np.union1d(np.unique(profile.stats.thread[in_focus]), named)
    on_test_thread = np.isin(profile.stats.thread, test_threads)
    # (the test's thread always has Python frames on it: a row without any is another thread's)
    on_test_thread_own = in_focus if scope.focus is not None else harness_own & with_stack
    if scope.current_thread_only:
        return on_test_thread & on_test_thread_own
    return np.where(on_test_thread, on_test_thread_own, harness_own)


def focus_nodes(profile: Profile, focus: Focus) -> np.ndarray:
    """For every node of the stack trie: does its stack pass through the focus function?"""
    import numpy as np

    is_focus = [focus.matches(f) for f in profile.frames]
    through = np.zeros(len(profile.stack_parent), dtype=bool)
    # parents come before their children in the trie
    for node, (parent, frame) in enumerate(
        zip(profile.stack_parent.tolist(), profile.stack_frame.tolist(), strict=True)
    ):
        through[node] = is_focus[frame] or (parent >= 0 and bool(through[parent]))
    return through


def own_nodes(profile: Profile) -> np.ndarray:
    """For every node of the stack trie: does the stack ending there belong to the test? The
    rule of _test_frames_start (the test's unless None), in one pass over the nodes (parents
    come before children)."""
    import numpy as np

    other, harness_frame, stdlib = 0, 1, 2
    kinds = [
        harness_frame if origins.is_harness(file) else stdlib if origins.is_stdlib(file) else other
        for file in (f.file for f in profile.frames)
    ]
    before, in_harness, in_test = 0, 1, 2  # pytest not yet on the stack / called it / the test's
    states = [before] * len(profile.stack_parent)
    for node, (parent, frame) in enumerate(
        zip(profile.stack_parent.tolist(), profile.stack_frame.tolist(), strict=True)
    ):
        state = states[parent] if parent >= 0 else before
        kind = kinds[frame]
        if state == in_test or (state == in_harness and kind == other):
            states[node] = in_test
        elif state == in_harness or kind == harness_frame:
            states[node] = in_harness
    return np.array(states, dtype=np.int8) != in_harness


def memory_failure(
    profile: Profile,
    limit: Limit,
    *,
    listing: Listing = DEFAULT_LISTING,
    root: str | None = None,
    focus: Focus | None = None,
) -> str | None:
    """The failure message if the test profile's bytes live at its high-watermark exceed the
    limit."""
    peak = own_usage(profile).peak_bytes
    if peak <= limit.bytes:
        return None
    lines = [f"Test was limited to {limit.text} but allocated {format_bytes(peak)} at its peak"]
    stacks = profile.top_stacks("peak_bytes", limit=None)
    if stacks:
        lines.append("Top stacks at peak (caller -> callee):")

    def heading(stack: StackUsage) -> str:
        share = 100 * stack.usage.peak_bytes / peak
        return (
            f"  {format_bytes(stack.usage.peak_bytes)} ({share:.1f}% of the peak, "
            f"{stack.usage.peak_count} {_plural(stack.usage.peak_count, 'allocation')}) at:"
        )

    lines += _stacks_listed(stacks, heading, listing, root, focus)
    return "\n".join(lines)


def leaking_stacks(
    profile: Profile, limit: Limit, filter_fn: LeakFilter | None = None
) -> list[StackUsage]:
    """Stacks of the test profile that still hold more than the limit at its end, biggest
    first; filter_fn is asked about each of those, and a False leaves the stack out."""
    over = [
        s for s in profile.top_stacks("leak_bytes", limit=None) if s.usage.leak_bytes > limit.bytes
    ]
    if filter_fn is None:
        return over
    return [s for s in over if filter_fn(leak_filter_stack(s.frames))]


def leak_filter_stack(frames: Sequence[Frame]) -> Stack:
    """What filter_fn receives: innermost frame first, like a traceback read upwards."""
    return Stack(tuple(StackFrame(f.function, f.file, f.line) for f in reversed(frames)))


def leak_failure(
    profile: Profile,
    limit: Limit,
    filter_fn: LeakFilter | None = None,
    *,
    listing: Listing = DEFAULT_LISTING,
    root: str | None = None,
    focus: Focus | None = None,
) -> str | None:
    """The failure message if any single stack of the test profile leaks more than the limit."""
    over = leaking_stacks(profile, limit, filter_fn)
    if not over:
        return None
    total = sum(s.usage.leak_bytes for s in over)
    lines = [
        f"Test was limited to {limit.text} of leaked memory per stack but leaked "
        f"{format_bytes(total)} in {len(over)} {_plural(len(over), 'stack')} over the limit "
        "(caller -> callee):"
    ]

    def heading(stack: StackUsage) -> str:
        return (
            f"  {format_bytes(stack.usage.leak_bytes)} leaked ({stack.usage.leak_count} "
            f"{_plural(stack.usage.leak_count, 'allocation')}) at:"
        )

    lines += _stacks_listed(over, heading, listing, root, focus)
    return "\n".join(lines)


def _stacks_listed(
    stacks: Sequence[StackUsage],
    heading: Callable[[StackUsage], str],
    listing: Listing,
    root: str | None,
    focus: Focus | None,
) -> list[str]:
    """The first `listing.stacks` stacks, each a heading line and its frames, then how many more."""
    lines: list[str] = []
    for stack in stacks[: listing.stacks]:
        lines.append(heading(stack))
        lines.extend(
            format_stack(stack.frames, root=root, frames_shown=listing.frames, focus=focus)
        )
    lines.extend(_more(len(stacks), listing.stacks, "stack"))
    return lines


def leaked_objects_failure(
    profile: Profile,
    limit: int,
    *,
    listing: Listing = DEFAULT_LISTING,
    root: str | None = None,
    focus: Focus | None = None,
) -> str | None:
    """The failure message if more than `limit` Python objects the test allocated are still alive
    at its end (the tracker's "exit" snapshot, after a gc.collect()): by type and line, with
    what holds them."""
    exit_snapshots = [s for s in profile.snapshots if s.label == "exit"]
    if not exit_snapshots:
        return None
    snapshot = exit_snapshots[-1]
    total = sum(group.count for group in snapshot.objects)
    if total <= limit:
        return None
    cut = "" if snapshot.complete else " (at least: the snapshot ran out of time)"
    lines = [
        f"Test was limited to {limit:,} leaked Python {_plural(limit, 'object')} but "
        f"{total:,} it allocated are still alive{cut}:"
    ]
    for group in snapshot.objects[: listing.stacks]:
        lines.append(f"  {group.count:,} {group.type} ({format_bytes(group.bytes)}) allocated at:")
        frames = profile.frames_of(group.stack) if group.stack >= 0 else ()
        lines.extend(format_stack(frames, root=root, frames_shown=listing.frames, focus=focus))
        for holder in snapshot.holders:
            if (holder.type, holder.stack) == (group.type, group.stack):
                lines.append(f"      held ({holder.count:,}): {holder.text}")
    lines.extend(_more(len(snapshot.objects), listing.stacks, "site"))
    return "\n".join(lines)


def _more(count: int, shown: int | None, word: str, indent: str = "  ") -> list[str]:
    """The "...and N more" line when only `shown` of `count` things are listed."""
    if shown is None or count <= shown:
        return []
    return [f"{indent}...and {count - shown} more {_plural(count - shown, word)}"]


def format_stack(
    frames: Sequence[Frame],
    *,
    root: str | None = None,
    indent: str = "      ",
    frames_shown: int | None = 5,
    focus: Focus | None = None,
) -> list[str]:
    """A stack as `file:line in function` lines, caller to callee, from the test function (or
    without pytest's own frames above the test) and with at most `frames_shown` of the innermost
    frames."""
    if not frames:
        return [f"{indent}<no Python frame>"]
    shown = list(frames[_first_test_frame(frames, focus) :])
    lines = []
    if frames_shown is not None and len(shown) > frames_shown:
        lines.extend(_more(len(shown), frames_shown, "frame", indent))
        shown = shown[len(shown) - frames_shown :]
    for frame in shown:
        lines.append(f"{indent}{display_path(frame.file, root)}:{frame.line} in {frame.function}")
    return lines


def display_path(file: str, root: str | None) -> str:
    """A file relative to the rootdir when it is under it, else as recorded."""
    if root and os.path.isabs(file):
        try:
            relative = os.path.relpath(file, root)
        except ValueError:
            return file
        if not relative.startswith(".."):
            return relative
    return file


def _first_test_frame(frames: Sequence[Frame], focus: Focus | None = None) -> int:
    """Index of the test function's outermost frame, else of the first frame after the harness
    frames that called the test (0 if the whole stack is harness: then it is shown as it is)."""
    if focus is not None:
        for i, frame in enumerate(frames):
            if focus.matches(frame):
                return i
    start = _test_frames_start(frames)
    return 0 if start is None else start


def _test_frames_start(frames: Sequence[Frame]) -> int | None:
    """Where the test's own frames begin: the first frame after pytest's that is not the
    standard library's (pytest calls the test through contextlib, unittest, ...). None for the
    harness's own allocations; 0 for a stack without pytest on it (a thread the test started)."""
    seen_harness = False
    for i, frame in enumerate(frames):
        if origins.is_harness(frame.file):
            seen_harness = True
        elif seen_harness and not origins.is_stdlib(frame.file):
            return i
    return None if seen_harness else 0


def _plural(count: int, word: str) -> str:
    return word if count == 1 else word + "s"
