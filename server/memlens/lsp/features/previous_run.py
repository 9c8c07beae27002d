"""The previous run of each script, remembered by its per-line peaks, for the inline change since
then (memlens.showChangeSincePreviousRun).

Observed whenever the diagnostics are published (after every load): a complete profile that is
new for its script pushes the one before it into "previous". Live checkpoints (incomplete) are
not runs and move nothing. Only the user lines' peaks are kept, for a few scripts.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from memlens.model import Profile

if TYPE_CHECKING:
    from memlens.lsp.server import MemlensServer

MAX_SCRIPTS = 16  # scripts remembered per server; the least recently run goes first

Peaks = dict[tuple[str, int], int]  # (file, 1-based line) -> inclusive bytes at the peak


@dataclass
class _Script:
    profile: weakref.ReferenceType[Profile]  # the run shown last (a new object is a new run)
    peaks: Peaks
    previous: Peaks | None = None


@dataclass
class _History:
    scripts: dict[str, _Script] = field(default_factory=dict)  # oldest run first


_histories: weakref.WeakKeyDictionary[MemlensServer, _History] = weakref.WeakKeyDictionary()


def observe(server: MemlensServer) -> None:
    """Remember the shown profile if it is a new complete run of its script."""
    profile, annotations, script = server.profile, server.annotations, server.script
    if profile is None or annotations is None or script is None or not profile.complete:
        return
    history = _histories.setdefault(server, _History())
    known = history.scripts.pop(script, None)
    if known is not None and known.profile() is profile:  # the same run, shown again
        history.scripts[script] = known
        return
    peaks = {
        (note.file, note.line): note.peak_bytes
        for notes in annotations.by_file.values()
        for note in notes.values()
    }
    history.scripts[script] = _Script(weakref.ref(profile), peaks, known.peaks if known else None)
    while len(history.scripts) > MAX_SCRIPTS:
        del history.scripts[next(iter(history.scripts))]


def change(server: MemlensServer, file: str, line: int) -> int | None:
    """The change of a line's peak (recorded 1-based line) since the previous run of the shown
    script; None when there is no previous run (or the shown profile is not a remembered run)."""
    history = _histories.get(server)
    script = server.script
    known = history.scripts.get(script) if history and script else None
    if known is None or known.previous is None or known.profile() is not server.profile:
        return None
    key = (file, line)
    return known.peaks.get(key, 0) - known.previous.get(key, 0)
