"""Which numbers are too small to show (memlens.hideBelowShare), and saying what was left out.

A line or function under the share of the run's peak AND of its total gets no inlay hint or code
lens: `▲ 32 B · Σ 32 B` on every constant would hide the lines that matter. The hover (and the
run's lens on line 0) says how many were hidden and below what.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from memlens.lsp.annotations import LineNote
from memlens.model import FunctionStats

if TYPE_CHECKING:
    from memlens.lsp.server import MemlensServer


def quiet_line(server: MemlensServer, note: LineNote) -> bool:
    assert server.annotations is not None
    share = server.settings.hide_below_share
    return server.annotations.quiet(note.peak_bytes, note.total_bytes, share)


def quiet_function(server: MemlensServer, function: FunctionStats) -> bool:
    assert server.annotations is not None
    usage = function.inclusive
    return server.annotations.quiet(
        usage.peak_bytes, usage.alloc_bytes, server.settings.hide_below_share
    )


def _count(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def hidden_text(server: MemlensServer, file: str) -> str | None:
    """What the file's hints and lenses leave out, in words; None when nothing is hidden."""
    if server.annotations is None:
        return None
    lines = sum(quiet_line(server, note) for note in server.current_notes(file).values())
    functions = sum(quiet_function(server, f) for f in server.annotations.functions(file))
    if not lines and not functions:
        return None
    return (
        f"{_count(lines, 'line')} and {_count(functions, 'function')} of this file under"
        f" {100 * server.settings.hide_below_share:g} % of the peak and of the total have no"
        " inline numbers (memlens.hideBelowShare)"
    )
