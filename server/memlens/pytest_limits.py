"""The checks behind `@pytest.mark.limit_memory` and `@pytest.mark.limit_leaks`.

Plain functions over a `Profile` (nothing here knows pytest's hooks), so they are tested without
running pytest: `parse_limit` reads the marker's size, `memory_failure` / `leak_failure` return
the failure message, or None when the test kept to its limit.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

from memlens.units import format_bytes

if TYPE_CHECKING:  # the model pulls numpy; the plugin loads in every pytest run
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


def memory_failure(profile: Profile, limit: Limit, *, root: str | None = None) -> str | None:
    """The failure message if the bytes live at the test's high-watermark exceed the limit."""
    peak = profile.totals.peak_bytes
    if peak <= limit.bytes:
        return None
    lines = [f"Test was limited to {limit.text} but allocated {format_bytes(peak)} at its peak"]
    stacks = profile.top_stacks("peak_bytes", STACKS_SHOWN)
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
    """Stacks with bytes still live at the end of the test, biggest first, that filter_fn keeps."""
    stacks = profile.top_stacks("leak_bytes", limit=None)
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


def is_harness_file(file: str) -> bool:
    """pytest's, pluggy's, xdist's and memlens' own frames: how the test was called, not what it
    did."""
    parts = file.replace("\\", "/").split("/")
    if _HARNESS_DIRS.intersection(parts[:-1]) or file in ("<frozen runpy>", "<string>"):
        return True
    return (
        len(parts) > 1
        and parts[-2] == "memlens"
        and parts[-1] in ("pytest_plugin.py", "tracker.py")
    )


def _first_test_frame(frames: Sequence[Frame]) -> int:
    """Index of the first frame after the harness frames that called the test (0 if the whole
    stack is harness: then it is shown as it is)."""
    last_harness = -1
    for i, frame in enumerate(frames):
        if is_harness_file(frame.file):
            last_harness = i
        elif last_harness >= 0:
            break
    start = last_harness + 1
    return start if start < len(frames) else 0


def _plural(count: int, word: str) -> str:
    return word if count == 1 else word + "s"
