"""Object snapshots, loaded: what live Python memory was made of (types) and who held it.

A snapshot counts the Python objects live at one moment (`memlens.snapshot(label)`, or "exit"
when tracking stops) per (type, allocating stack), and, for the biggest of those groups, gives
the chain of references from a root to them (native/objects.cpp, memlens/holders.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

# Where a holder chain starts: a module's globals, a class's attributes, a running frame, a
# reference cycle the collector has not freed, or not found within the time budget.
Root = Literal["module", "class", "frame", "unreachable", "unknown"]
ROOTS: tuple[Root, ...] = ("module", "class", "frame", "unreachable", "unknown")


@dataclass(frozen=True)
class ObjectGroup:
    """The live objects of one type allocated at one stack (-1: no Python frame)."""

    type: str  # "bytearray", "numpy.ndarray", "app.Cache"
    stack: int
    count: int
    bytes: int  # their blocks, and the blocks of the buffers they export


@dataclass(frozen=True)
class HolderStep:
    """One reference on the way from the objects to their root: `Cache.entries (dict, 10,000
    items)`; stack is where that holder was allocated (-1 when unknown)."""

    text: str
    stack: int


@dataclass(frozen=True)
class Holder:
    """Who keeps a group of objects (of one type and site) alive."""

    type: str
    stack: int
    count: int  # objects of the group under this chain
    bytes: int
    root: Root
    steps: tuple[HolderStep, ...]  # steps[0] is nearest the objects, the last is the root

    @property
    def text(self) -> str:
        """The chain as one line: `Cache.entries (dict, 10,000 items) <- class Cache <- ...`."""
        return " <- ".join(step.text for step in self.steps) or self.root


@dataclass(frozen=True)
class Snapshot:
    label: str
    t_ms: int  # since tracking started
    objects: tuple[ObjectGroup, ...]
    holders: tuple[Holder, ...]
    complete: bool  # False: the time budget cut the walk short (counts are a lower bound)
    # The exit snapshot's mark of what the program still reaches (capture `referenced`, folded
    # into Stats.values' ref columns): True complete, False cut short (a floor), None not taken.
    referenced_complete: bool | None = None

    def by_type(self) -> dict[str, tuple[int, int]]:
        """type -> (count, bytes) over every site."""
        totals: dict[str, tuple[int, int]] = {}
        for group in self.objects:
            count, size = totals.get(group.type, (0, 0))
            totals[group.type] = (count + group.count, size + group.bytes)
        return totals
