"""Which numbers are too small to show (memlens.hideBelowShare), and saying what was left out.

A line or function under the share of the run's peak AND of its total gets no inlay hint or code
lens: `▲ 32 B · Σ 32 B` on every constant would hide the lines that matter. The hover (and the
run's lens on line 0) says how many were hidden and below what.
"""

from __future__ import annotations

from memlens.lsp.annotations import LineNote
from memlens.lsp.session import Session
from memlens.model import FunctionStats


def quiet_line(session: Session, note: LineNote) -> bool:
    assert session.annotations is not None
    share = session.settings.hide_below_share
    return session.annotations.quiet(note.peak_bytes, note.total_bytes, share)


def quiet_function(session: Session, function: FunctionStats) -> bool:
    assert session.annotations is not None
    usage = function.inclusive
    return session.annotations.quiet(
        usage.peak_bytes, usage.alloc_bytes, session.settings.hide_below_share
    )


def _count(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def hidden_text(session: Session, file: str) -> str | None:
    """What the file's hints and lenses leave out, in words; None when nothing is hidden."""
    if session.annotations is None:
        return None
    lines = sum(quiet_line(session, note) for note in session.current_notes(file).values())
    functions = sum(quiet_function(session, f) for f in session.annotations.functions(file))
    if not lines and not functions:
        return None
    return (
        f"{_count(lines, 'line')} and {_count(functions, 'function')} of this file under"
        f" {100 * session.settings.hide_below_share:g} % of the peak and of the total have no"
        " inline numbers (memlens.hideBelowShare)"
    )
