"""Taking an object snapshot: the live Python objects by (type, allocating stack), and who holds
the biggest groups, kept by the tracker for the capture (`snapshots`, memlens.snapshots).

Everything here runs as memlens's own code: nothing it allocates is counted (its frames are
under OWN_CODE_DIR, and the native census runs with the tracker's guard held). The collector is
paused meanwhile, so that a snapshot never frees the program's cycles (which would change its
numbers).

What is counted: objects the tracker saw allocated (objects older than tracking, and those from
free lists whose block was allocated before it, are not), each with its own block and the block
its exported buffer starts (bytearray, array.array, numpy.ndarray: a numpy array's malloc'ed
data goes under `numpy.ndarray`, at the array's line).
"""

from __future__ import annotations

import sys
from types import BuiltinFunctionType, CodeType, FrameType, FunctionType, ModuleType
from typing import Any

from memlens import _native
from memlens.holders import describe
from memlens.tracker import OWN_CODE_DIR

# Defaults: a snapshot of a heap of millions of objects stays within a few seconds; a
# snapshot that runs out says so (`complete: false`) rather than guess.
CENSUS_BUDGET_S = 5.0
HOLDERS_BUDGET_S = 1.0
HOLDER_GROUPS = 10  # the biggest (type, site) groups get holders
HOLDERS_PER_GROUP = 3


def take(
    label: str,
    *,
    budget_s: float = CENSUS_BUDGET_S,
    holders_budget_s: float = HOLDERS_BUDGET_S,
    referenced: bool = False,
) -> bool:
    """Record a snapshot labelled `label` in the running tracker's capture; False if none runs.
    `referenced`: also mark the live blocks the program's roots still reach (native/reach.h),
    per stats row: the exit snapshot's split of live memory into referenced and lost."""
    if not _native.is_tracking():
        return False
    # gc is imported here, not with the module: a Tracker binds this module when it starts, and
    # the program must not find modules there that it did not import (tests/native).
    import gc

    collecting = gc.isenabled()
    gc.disable()
    try:
        # The collector's list first: what is made below is ours, not the program's graph.
        seeds = gc.get_objects()
        frame_locals, locals_dicts = _frame_locals()
        roots = _roots(frame_locals) if referenced else None
        t_ms, complete, types, groups, holders_complete, found, marked = _native.census(
            seeds,
            frame_locals,
            locals_dicts + own_objects(),
            budget_s,
            holders_budget_s,
            HOLDER_GROUPS,
            HOLDERS_PER_GROUP,
            roots,
        )
        del seeds, frame_locals, locals_dicts, roots
        names = [type_name(kind) for kind in types]
        del types
        packed = memoryview(groups).cast("q")  # per group: type, stack, count, bytes
        holders = [
            (names[packed[4 * g]], packed[4 * g + 1], n, size, root, describe(root, n, chain))
            for g, root, n, size, chain in found
        ]
        del found, packed
        return bool(
            _native.record_snapshot(
                label, t_ms, complete and holders_complete, names, groups, holders, marked
            )
        )
    finally:
        if collecting:
            gc.enable()


def _roots(frame_locals: list[tuple[FrameType, list[Any]]]) -> list[Any]:
    """What a program keeps to its end: sys.modules (module globals, and through them class
    attributes, closures and caches) and every thread's running frames (their locals: a
    function still running may yet free what they hold). memlens's own are excluded later."""
    return [sys.modules, *(frame for frame, _ in frame_locals)]


def _is_own_module(name: str) -> bool:
    return name == "memlens" or name.startswith("memlens.")


def own_objects() -> list[Any]:
    """memlens's own objects, left out of a snapshot (neither counted, nor traversed, nor a
    holder): its modules and what only they reach. The walk does not enter other modules,
    classes, functions or code that are not memlens's (the program's and the library's own)."""
    import gc  # see take()

    seen: dict[int, Any] = {}
    todo = [m for name, m in list(sys.modules.items()) if _is_own_module(name)]
    while todo:
        item = todo.pop()
        if id(item) in seen or not _belongs_to_memlens(item):
            continue
        seen[id(item)] = item
        todo.extend(gc.get_referents(item))
    return list(seen.values())


def _belongs_to_memlens(item: Any) -> bool:
    """Whether the walk from memlens's modules goes on through `item`."""
    if isinstance(item, ModuleType):
        return _is_own_module(item.__name__)
    if isinstance(item, type):
        return _is_own_module(str(getattr(item, "__module__", "")))
    if isinstance(item, CodeType):
        return item.co_filename.startswith(OWN_CODE_DIR)
    if isinstance(item, FunctionType):
        return item.__code__.co_filename.startswith(OWN_CODE_DIR)
    return not isinstance(item, (FrameType, BuiltinFunctionType))


def _frame_locals() -> tuple[list[tuple[FrameType, list[Any]]], list[dict[str, Any]]]:
    """(frame, its local values) of every running frame, and the locals dicts that reading
    f_locals made or refreshed (3.10-3.12; 3.13 gives a proxy): not the program's references."""
    frame_locals: list[tuple[FrameType, list[Any]]] = []
    locals_dicts: list[dict[str, Any]] = []
    for frame in _thread_frames():
        local = frame.f_locals
        frame_locals.append((frame, list(local.values())))
        if type(local) is dict:
            locals_dicts.append(local)
    return frame_locals, locals_dicts


def _thread_frames() -> list[FrameType]:
    """Every thread's running frames (outside memlens): roots whose locals the collector does
    not see from 3.11 on (a running frame's tp_traverse skips them). Reading f_locals makes
    3.11/3.12 build the frame's locals dict (kept by the frame; not counted)."""
    frames: list[FrameType] = []
    for top in sys._current_frames().values():
        frame: FrameType | None = top
        while frame is not None:
            if not frame.f_code.co_filename.startswith(OWN_CODE_DIR):
                frames.append(frame)
            frame = frame.f_back
    del top  # our own frame is among them: no cycle through its locals
    return frames


def type_name(kind: Any) -> str:
    """`bytearray`, `numpy.ndarray`, `app.Cache`: the module unless builtins, and the qualname."""
    module = getattr(kind, "__module__", None)
    qualname = getattr(kind, "__qualname__", None)
    if not isinstance(qualname, str):
        qualname = getattr(kind, "__name__", "?")
    if not isinstance(module, str) or module == "builtins":
        return str(qualname)
    return f"{module}.{qualname}"
