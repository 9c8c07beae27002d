"""The previous run of each script, remembered by its per-line peaks, for the inline change since
then (memlens.showChangeSincePreviousRun).

Observed whenever the diagnostics are published (after every load): a complete profile that is
new for its script pushes the one before it into "previous". Live checkpoints (incomplete) are
not runs and move nothing. Only the user lines' peaks are kept, for a few scripts.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field

from memlens.lsp.session import Session
from memlens.model import Profile

MAX_SCRIPTS = (
    16  # scripts remembered per session (one per server); the least recently run goes first
)

Peaks = dict[tuple[str, int], int]  # (file, 1-based line) -> inclusive bytes at the peak


@dataclass
class _Script:
    profile: weakref.ReferenceType[Profile]  # the run shown last (a new object is a new run)
    peaks: Peaks
    previous: Peaks | None = None


@dataclass
class _History:
    scripts: dict[str, _Script] = field(default_factory=dict)  # oldest run first


_histories: weakref.WeakKeyDictionary[Session, _History] = weakref.WeakKeyDictionary()


def observe(session: Session) -> None:
    """Remember the shown profile if it is a new complete run of its script."""
    profile, annotations, script = session.profile, session.annotations, session.script
    if profile is None or annotations is None or script is None or not profile.complete:
        return
    history = _histories.setdefault(session, _History())
    known = history.scripts.pop(script, None)
    if known is not None and known.profile() is profile:  # the same run, shown again
        history.scripts[script] = known
        return
    peaks = annotations.peaks()
    history.scripts[script] = _Script(weakref.ref(profile), peaks, known.peaks if known else None)
    while len(history.scripts) > MAX_SCRIPTS:
        del history.scripts[next(iter(history.scripts))]


def change(session: Session, file: str, line: int) -> int | None:
    """The change of a line's peak (recorded 1-based line) since the previous run of the shown
    script; None when there is no previous run (or the shown profile is not a remembered run)."""
    history = _histories.get(session)
    script = session.script
    known = history.scripts.get(script) if history and script else None
    if known is None or known.previous is None or known.profile() is not session.profile:
        return None
    key = (file, line)
    return known.peaks.get(key, 0) - known.previous.get(key, 0)
