"""The checks behind `@pytest.mark.limit_memory` and `@pytest.mark.limit_leaks`.

Plain functions over a `Profile` (nothing here knows pytest's hooks), so they are tested without
running pytest: `parse_limit` reads the marker's size, `memory_failure` / `leak_failure` return
the failure message, or None when the test kept to its limit.
"""

from __future__ import annotations

import functools
import os
import re
import sysconfig
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

from memlens.units import format_bytes

if TYPE_CHECKING:  # the model pulls numpy; the plugin loads in every pytest run
    import numpy as np

    from memlens.model import Frame, Profile, StackUsage

# Decimal and binary units, as pytest-memray users write them; matched case-insensitively.
_UNITS = {
    "B": 1,
    "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12,
    "KiB": 2**10, "MiB": 2**20, "GiB": 2**30, "TiB": 2**40,
}  # fmt: skip
_BY_LOWER = {unit.lower(): unit for unit in _UNITS}
_LIMIT = re.compile(r"^\s*\+?(\d+(?:\.\d*)?|\.\d+)\s*([a-zA-Z]+)\s*$")
_ACCEPTED = (
    "a number and a unit, such as '10 MB', '512KiB' or '1.5 GiB' (B, KB, MB, GB, KiB, MiB, GiB)"
)

STACKS_SHOWN = 3  # stacks listed in a failure message
FRAMES_SHOWN = 5  # innermost frames shown per stack


@dataclass(frozen=True)
class Limit:
    """A size limit as the user wrote it, and in bytes."""

    bytes: int
    text: str  # "10.0 MB (10000000 B)": the user's unit, then the exact byte count


def parse_limit(value: object) -> Limit:
    """ "10 MB" -> 10_000_000 bytes; an int is a byte count. ValueError says what is accepted."""
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 0:
            raise ValueError(f"invalid size {value!r}: a limit cannot be negative")
        return Limit(value, f"{value} B")
    match = _LIMIT.match(value) if isinstance(value, str) else None
    if match is None:
        raise ValueError(f"invalid size {value!r}: expected {_ACCEPTED}")
    unit = _BY_LOWER.get(match.group(2).lower())
    if unit is None:
        raise ValueError(
            f"invalid size {value!r}: unknown unit {match.group(2)!r}; expected {_ACCEPTED}"
        )
    number = float(match.group(1))
    size = int(number * _UNITS[unit])
    text = f"{size} B" if unit == "B" else f"{number:.1f} {unit} ({size} B)"
    return Limit(size, text)


class StackFrame(NamedTuple):
    """One frame of a leaking stack, as `limit_leaks(filter_fn=...)` receives it."""

    function: str
    filename: str
    lineno: int


LeakFilter = Callable[[list[StackFrame]], bool]


@dataclass(frozen=True)
class OwnUsage:
    """A test's own numbers: its stacks only, not pytest's bookkeeping around the call."""

    peak_bytes: int  # live at the high-watermark
    alloc_bytes: int
    alloc_count: int
    leak_bytes: int  # still live when tracking stopped


def own_usage(profile: Profile) -> OwnUsage:
    """Sum the stats rows whose stack is the test's (see is_test_stack)."""
    import numpy as np

    from memlens.model import METRICS

    own = np.ones(len(profile.stats), dtype=bool)
    rows = profile.stats.stack >= 0
    own[rows] = own_nodes(profile)[profile.stats.stack[rows]]
    sums = profile.stats.values[own].sum(axis=0)
    column = {metric: int(sums[i]) for i, metric in enumerate(METRICS)}
    return OwnUsage(
        column["peak_bytes"], column["alloc_bytes"], column["alloc_count"], column["leak_bytes"]
    )


def own_nodes(profile: Profile) -> np.ndarray:
    """For every node of the stack trie: does the stack ending there belong to the test? The
    rule of is_test_stack, in one pass over the nodes (parents come before children)."""
    import numpy as np

    other, harness_frame, stdlib = 0, 1, 2
    kinds = [
        harness_frame if is_harness_file(f.file) else stdlib if _is_stdlib_file(f.file) else other
        for f in profile.frames
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


def own_stacks(profile: Profile, metric: str, limit: int | None = None) -> list[StackUsage]:
    """The test's stacks with the most of `metric`, biggest first."""
    mine = own_nodes(profile)
    # pytest's own stacks are small: a margin over `limit` finds the test's biggest without
    # building every stack of a big capture
    ranked = profile.top_stacks(metric, limit=None if limit is None else 4 * limit + 50)
    own = [s for s in ranked if s.stack_id < 0 or mine[s.stack_id]]
    return own if limit is None else own[:limit]


def memory_failure(profile: Profile, limit: Limit, *, root: str | None = None) -> str | None:
    """The failure message if the test's bytes live at its high-watermark exceed the limit."""
    peak = own_usage(profile).peak_bytes
    if peak <= limit.bytes:
        return None
    lines = [f"Test was limited to {limit.text} but allocated {format_bytes(peak)} at its peak"]
    stacks = own_stacks(profile, "peak_bytes", STACKS_SHOWN)
    if stacks:
        lines.append("Top stacks at peak (caller -> callee):")
    for stack in stacks:
        share = 100 * stack.usage.peak_bytes / peak
        lines.append(
            f"  {format_bytes(stack.usage.peak_bytes)} ({share:.1f}% of the peak, "
            f"{stack.usage.peak_count} {_plural(stack.usage.peak_count, 'allocation')}) at:"
        )
        lines.extend(format_stack(stack.frames, root=root))
    return "\n".join(lines)


def leaking_stacks(profile: Profile, filter_fn: LeakFilter | None = None) -> list[StackUsage]:
    """Stacks of the test with bytes still live at its end, biggest first, that filter_fn keeps."""
    stacks = own_stacks(profile, "leak_bytes")
    if filter_fn is None:
        return stacks
    return [s for s in stacks if filter_fn(leak_filter_stack(s.frames))]


def leak_filter_stack(frames: Sequence[Frame]) -> list[StackFrame]:
    """What filter_fn receives: innermost frame first (the line that allocated), like a traceback
    read upwards and like pytest-memray's `Stack.frames`."""
    return [StackFrame(f.function, f.file, f.line) for f in reversed(frames)]


def leak_failure(
    profile: Profile, limit: Limit, filter_fn: LeakFilter | None = None, *, root: str | None = None
) -> str | None:
    """The failure message if any single stack leaks more than the limit."""
    over = [s for s in leaking_stacks(profile, filter_fn) if s.usage.leak_bytes > limit.bytes]
    if not over:
        return None
    total = sum(s.usage.leak_bytes for s in over)
    lines = [
        f"Test was limited to {limit.text} of leaked memory per stack but leaked "
        f"{format_bytes(total)} in {len(over)} {_plural(len(over), 'stack')} over the limit "
        "(caller -> callee):"
    ]
    for stack in over[:STACKS_SHOWN]:
        lines.append(
            f"  {format_bytes(stack.usage.leak_bytes)} leaked ({stack.usage.leak_count} "
            f"{_plural(stack.usage.leak_count, 'allocation')}) at:"
        )
        lines.extend(format_stack(stack.frames, root=root))
    if len(over) > STACKS_SHOWN:
        lines.append(f"  ... and {len(over) - STACKS_SHOWN} more")
    return "\n".join(lines)


def format_stack(
    frames: Sequence[Frame], *, root: str | None = None, indent: str = "      "
) -> list[str]:
    """A stack as `file:line in function` lines, caller to callee, without pytest's own frames
    above the test and with at most FRAMES_SHOWN of the innermost frames."""
    if not frames:
        return [f"{indent}<no Python frame>"]
    shown = list(frames[_first_test_frame(frames) :])
    lines = []
    if len(shown) > FRAMES_SHOWN:
        lines.append(f"{indent}...")
        shown = shown[-FRAMES_SHOWN:]
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


_HARNESS_DIRS = frozenset({"_pytest", "pytest", "pluggy", "xdist", "execnet"})
_STDLIB = sysconfig.get_paths()["stdlib"] + os.sep


@functools.lru_cache(maxsize=4096)
def is_harness_file(file: str) -> bool:
    """pytest's, pluggy's, xdist's and memlens' own frames: how the test was called, not what it
    did."""
    parts = file.replace("\\", "/").split("/")
    if _HARNESS_DIRS.intersection(parts[:-1]):
        return True
    return (
        len(parts) > 1
        and parts[-2] == "memlens"
        and parts[-1] in ("pytest_plugin.py", "tracker.py")
    )


@functools.lru_cache(maxsize=4096)
def _is_stdlib_file(file: str) -> bool:
    return file.startswith("<frozen ") or (file.startswith(_STDLIB) and "-packages" not in file)


def _first_test_frame(frames: Sequence[Frame]) -> int:
    """Index of the first frame after the harness frames that called the test (0 if the whole
    stack is harness: then it is shown as it is)."""
    start = _test_frames_start(frames)
    return 0 if start is None else start


def _test_frames_start(frames: Sequence[Frame]) -> int | None:
    """Where the test's own frames begin: the first frame after pytest's that is not the
    standard library's (pytest calls the test through contextlib, unittest, ...). None for the
    harness's own allocations; 0 for a stack without pytest on it (a thread the test started)."""
    seen_harness = False
    for i, frame in enumerate(frames):
        if is_harness_file(frame.file):
            seen_harness = True
        elif seen_harness and not _is_stdlib_file(frame.file):
            return i
    return None if seen_harness else 0


def is_test_stack(frames: Sequence[Frame]) -> bool:
    """Whether the test's code is on the stack (pytest's own bookkeeping during the call is
    not the test's memory). Stacks without pytest on them (threads) are the test's."""
    return _test_frames_start(frames) is not None


def _plural(count: int, word: str) -> str:
    return word if count == 1 else word + "s"
