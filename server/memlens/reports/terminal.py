"""Tables for the terminal: rich-style boxes when stdout is a TTY, plain aligned text otherwise
(so `memlens table CAP | grep ...` and CI logs stay clean). No dependency beyond the stdlib."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import TextIO


def is_tty(stream: TextIO | None = None) -> bool:
    """Whether to draw boxes: a real terminal, unless MEMLENS_PLAIN is set (plain text anyway)."""
    stream = sys.stdout if stream is None else stream
    if os.environ.get("MEMLENS_PLAIN"):
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def table(
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    right: Sequence[bool] | None = None,
    boxed: bool = False,
    title: str | None = None,
) -> str:
    """Render rows of cells. `right[i]` right-aligns column i (numbers); boxed draws a frame."""
    right = list(right) if right is not None else [False] * len(headers)
    widths = [len(h) for h in headers]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))

    def cells(row: Sequence[str]) -> list[str]:
        return [c.rjust(w) if r else c.ljust(w) for c, w, r in zip(row, widths, right, strict=True)]

    out: list[str] = []
    if boxed:
        bar = ["─" * (w + 2) for w in widths]
        if title:
            out.append(title)
        out.append("┏" + "┳".join("━" * (w + 2) for w in widths) + "┓")
        out.append("┃ " + " ┃ ".join(cells(headers)) + " ┃")
        out.append("┡" + "╇".join("━" * (w + 2) for w in widths) + "┩")
        out.extend("│ " + " │ ".join(cells(row)) + " │" for row in rows)
        out.append("└" + "┴".join(bar) + "┘")
    else:
        if title:
            out.append(title)
        out.append("  ".join(cells(headers)).rstrip())
        out.append("  ".join("-" * w for w in widths))
        out.extend("  ".join(cells(row)).rstrip() for row in rows)
    return "\n".join(out)


def key_values(pairs: Sequence[tuple[str, str]]) -> str:
    """`name:  value` lines with the values aligned."""
    width = max((len(k) for k, _ in pairs), default=0)
    return "\n".join(f"{k + ':':<{width + 1}}  {v}" for k, v in pairs)
