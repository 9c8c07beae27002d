"""Memory allocated while importing, charged to the line that imported.

An `import httpx` runs importlib's machinery (`_find_and_load`, `_compile_bytecode`, ...) and then
the module's own top-level code (`inspect.cleandoc` on its docstrings, ...). None of those frames
is a line the user can change; the `import` line is. For every trie node this finds the node
where its stack entered the import system, so reports can charge the node's memory to the frame
just above it (the importing line) instead of to the innermost frame.
"""

from __future__ import annotations

import numpy as np

from memlens import origins
from memlens.model import Profile

NOT_IMPORTING = -2  # the stack never entered the import system
NO_IMPORTER = -1  # it entered it at the root (site, the interpreter's start-up): no line to charge


def import_frames(profile: Profile) -> np.ndarray:
    """Per frame: True where it is a frame of the import system."""
    kinds: dict[str, bool] = {}
    out = np.zeros(len(profile.frames), dtype=bool)
    for index, frame in enumerate(profile.frames):
        if frame.file not in kinds:
            kinds[frame.file] = origins.kind(frame.file) == origins.IMPORT_SYSTEM
        out[index] = kinds[frame.file]
    return out


def importers(profile: Profile) -> np.ndarray:
    """Per trie node: the node just above the outermost import-system frame of its stack (the
    importing line), NO_IMPORTER if that frame is a root, NOT_IMPORTING if there is none."""
    parent = profile.stack_parent
    entering = import_frames(profile)[profile.stack_frame] if len(parent) else np.zeros(0, bool)
    out = np.full(len(parent), NOT_IMPORTING, dtype=np.int64)
    for nodes in depth_levels(profile):  # parents before children
        up = parent[nodes]
        inherited = np.where(up >= 0, out[np.maximum(up, 0)], NOT_IMPORTING)
        fresh = np.where(entering[nodes], np.where(up >= 0, up, NO_IMPORTER), NOT_IMPORTING)
        out[nodes] = np.where(inherited != NOT_IMPORTING, inherited, fresh)
    return out


def depth_levels(profile: Profile) -> list[np.ndarray]:
    """The trie's nodes by depth: roots first, then their children, and so on."""
    depth = profile.stack_depth
    if not len(depth):
        return []
    order = np.argsort(depth, kind="stable")
    bounds = np.searchsorted(depth[order], np.arange(int(depth.max()) + 2))
    return [order[bounds[level] : bounds[level + 1]] for level in range(len(bounds) - 1)]
