"""Typed stub of memlens._native, the in-process allocation tracker (C++, pybind11)."""

from collections.abc import Callable
from types import CodeType, FrameType
from typing import Any

def start(
    output: str | None,
    *,
    python_allocators: bool = True,
    follow_fork: bool = False,
    checkpoint_interval: float = 1.0,
    argv: list[str] = ...,
    memlens_version: str = "",
    cut: FrameType | None = None,
    own_code_dir: str = "",
    focus_code: CodeType | None = None,
    current_thread_only: bool = False,
    temporary_threshold: int = 1,
) -> None:
    """Start tracking every allocation of this process.

    In the calling thread: `cut` (a frame of it) and its callers are cut from every stack, and
    only what is allocated while `cut` is still there and below it is counted. Code whose file
    starts with `own_code_dir` is memlens's: never in a stack, and what is allocated under it is
    not counted. With `focus_code`, the calling thread counts only what is allocated under a
    frame of that code object, and its stacks begin there (`memlens run` gives the program's).
    `current_thread_only`: other threads are not counted. A block freed within
    `temporary_threshold` (0 to 64) allocations of its thread is temporary.
    Threads are named from the OS and from Python's `threading` (those alive now).

    RuntimeError if already tracking; OSError if output's directory is not writable. A relative
    output is taken from the current directory now (the program may chdir later). With output,
    `output + ".partial"` is rewritten every checkpoint_interval seconds (0 = never); a forked
    child with follow_fork writes `output + "." + pid`.
    """

def stop(exit_code: int | None = None) -> bytes:
    """Stop tracking; the complete capture (msgpack), also written to output if given.

    RuntimeError if not tracking. If writing output fails, OSError whose `capture` attribute
    holds the bytes.
    """

def snapshot() -> bytes:
    """The capture so far (complete=False); tracking goes on. RuntimeError if not tracking."""

Referenced = tuple[bool, bytes]

def census(
    seeds: list[Any],
    frame_locals: list[tuple[FrameType, list[Any]]],
    exclude: list[Any],
    budget_s: float,
    holders_budget_s: float,
    groups: int,
    per_group: int,
    roots: list[Any] | None = None,
) -> tuple[
    int,
    bool,
    list[type],
    bytes,
    bool,
    list[tuple[int, str, int, int, list[Any]]],
    Referenced | None,
]:
    """Live objects reachable from seeds and the running frames' locals by (type, allocating
    stack), biggest first, and the holders of the first `groups` groups: (t_ms, complete,
    types, groups, holders_complete, holders, referenced). `types` are the groups' types, each
    once; `groups` packs each group as four native int64 (index in types, stack, count, bytes):
    tens of thousands of groups as tuples were megabytes of the exit snapshot's peak. A holder
    is (group index, root, count, bytes, chain of objects nearest first). With `roots`,
    referenced is (complete, rows): the live blocks the roots reach (native/reach.h), each row
    packed as three int64 (stats row, count, bytes); else None."""

def object_stacks(objects: list[Any]) -> list[int]:
    """The stack each object's block was allocated at (-1: not seen by the tracker)."""

def record_snapshot(
    label: str,
    t_ms: int,
    complete: bool,
    type_names: list[str],
    groups: bytes,
    holders: list[tuple[str, int, int, int, str, list[tuple[str, int]]]],
    referenced: Referenced | None = None,
) -> bool:
    """Keep an object snapshot for the capture (`type_names` and `groups` as census gives
    types and groups, with each type's name); False when not tracking."""

def set_snapshot_handler(handler: Callable[[str], object] | None) -> None: ...
def is_tracking() -> bool: ...
def last_peak() -> int:
    """The high-watermark of the last session that stopped, in bytes (0 before any)."""

def walk_stats() -> dict[str, int | bool]:
    """How the current (or last) session's stack walks went.

    fast: walks that read only the frames that may have moved (the eval hook's counts);
    full: walks of every frame; misses: fast walks that had to start over; errors: fast walks
    that a full walk disagreed with (checked only when MEMLENS_CHECK_WALKS is set);
    hook_removals: times the eval hook did not pay for itself and was removed; hooked: whether
    the eval hook is installed now; hook_given_up: whether it was removed for the session
    because a thread's hooked frames used an eighth of its C stack (deep recursion).
    """

def set_thread_name(thread_id: int, name: str) -> None:
    """Name a thread in the capture; thread_id is threading.get_ident()."""

def rename_thread(thread_id: int, name: str) -> None:
    """A live thread was renamed: what it allocates from now on goes under the new name."""
