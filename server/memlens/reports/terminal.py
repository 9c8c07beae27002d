"""Text for the terminal, drawn with rich: boxed tables when stdout is a TTY, plain aligned ASCII
otherwise (so `memlens table CAP | grep ...` and CI logs stay clean and tests deterministic).
Every table fits the width: the terminal's, else $COLUMNS, else PIPE_WIDTH.

Names come from the profiled program: `safe` shows control characters as `\\x1b` escapes, and
cells are rich `Text` (never markup), so `[bold]` in a function name prints as itself.
"""

from __future__ import annotations

import io
import os
import re
import sys
import textwrap
from collections.abc import Sequence
from typing import TextIO

from rich import box
from rich.cells import cell_len
from rich.console import Console
from rich.table import Table
from rich.text import Text

PIPE_WIDTH = 100
MIN_WIDTH = 40
# C0, DEL, C1, and the invisible direction and line-separator marks that reorder or split text
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
# ASCII rules for pipes: a dashed line under the header and nothing else
_PLAIN_BOX = box.Box("    \n    \n -  \n    \n    \n -  \n    \n    \n", ascii=True)
_GAP = 2  # columns between cells in plain text


def safe(text: str) -> str:
    """`text` with control characters as escapes: ESC -> `\\x1b`, U+202E -> `\\u202e`."""
    return _CONTROL.sub(_escape, text)


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def is_tty(stream: TextIO | None = None) -> bool:
    """Whether to draw boxes: a real terminal, unless MEMLENS_PLAIN is set (plain text anyway)."""
    stream = sys.stdout if stream is None else stream
    if os.environ.get("MEMLENS_PLAIN"):
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def columns(stream: TextIO | None = None) -> int:
    """The width to fit: $COLUMNS if set, else the terminal's, else PIPE_WIDTH."""
    stream = sys.stdout if stream is None else stream
    columns = os.environ.get("COLUMNS", "")
    if columns.isdigit() and int(columns) > 0:
        return max(MIN_WIDTH, int(columns))
    if is_tty(stream):
        try:
            size = os.get_terminal_size(stream.fileno()).columns
        except (OSError, ValueError, AttributeError):
            size = 0
        if size > 0:  # a terminal that reports no size (a fresh pty) gets the pipe width
            return max(MIN_WIDTH, size)
    return PIPE_WIDTH


def path(file: str, cwd: str | None = None) -> str:
    """A frame's file as the user would type it: relative to the working directory when under it."""
    if not os.path.isabs(file):
        return file
    try:
        relative = os.path.relpath(file, cwd or os.getcwd())
    except (ValueError, OSError):  # another drive, or the working directory is gone
        return file
    return file if relative == os.pardir or relative.startswith(os.pardir + os.sep) else relative


def location(file: str, line: int) -> str:
    return f"{path(file)}:{line}" if line else path(file)


def _fit(natural: list[int], flexible: list[bool], room: int) -> list[int]:
    """Column widths within `room`: fixed columns keep their width; flexible ones share the rest
    in proportion to their natural width, each keeping at least min(natural, 8)."""
    fixed = sum(w for w, f in zip(natural, flexible, strict=True) if not f)
    wanted = sum(w for w, f in zip(natural, flexible, strict=True) if f)
    if fixed + wanted <= room or not wanted:
        return natural
    space = max(room - fixed, 0)
    out = []
    for w, f in zip(natural, flexible, strict=True):
        out.append(max(min(w, 8), w * space // wanted) if f else w)
    return out


def table(
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    right: Sequence[bool] | None = None,
    clip: Sequence[bool] | None = None,
    boxed: bool = False,
    title: str | None = None,
    width: int | None = None,
) -> str:
    """Rows of cells as text no wider than `width`. `right[i]` right-aligns column i (numbers,
    never cut); text columns wrap, or end in "…" where `clip[i]` (one line per row: trees).
    `width` defaults to columns()."""
    room = width or columns()
    right = list(right) if right is not None else [False] * len(headers)
    clip = list(clip) if clip is not None else [False] * len(headers)
    cells = [[safe(cell) for cell in row] for row in rows]
    natural = [cell_len(h) for h in headers]
    for row in cells:
        for i, cell in enumerate(row):
            natural[i] = max(natural[i], cell_len(cell))
    borders = 3 * len(headers) + 1 if boxed else _GAP * (len(headers) - 1)
    widths = _fit(natural, [not r for r in right], room - borders)
    grid = Table(
        box=box.HEAVY_HEAD if boxed else _PLAIN_BOX,
        show_edge=boxed,
        pad_edge=boxed,
        padding=(0, 1) if boxed else (0, 1, 0, 0),
        header_style="bold" if boxed else "",
    )
    for header, w, is_right, is_clipped in zip(headers, widths, right, clip, strict=True):
        grid.add_column(
            Text(header),
            justify="right" if is_right else "left",
            width=w,
            no_wrap=is_right or is_clipped,
            overflow="ellipsis" if is_clipped else "fold",
        )
    for row in cells:
        grid.add_row(*(Text(cell) for cell in row))
    out = [wrap(line, room) for line in title.split("\n")] if title else []
    out.append(_print(grid, room, styled=boxed))
    return "\n".join(out)


def _print(renderable: Table, room: int, *, styled: bool) -> str:
    sink = io.StringIO()
    console = Console(
        file=sink,
        width=room,
        force_terminal=styled,
        color_system="standard" if styled else None,
        markup=False,
        highlight=False,
        emoji=False,
        soft_wrap=False,
    )
    console.print(renderable)
    return "\n".join(line.rstrip() for line in sink.getvalue().splitlines())


def wrap(text: str, width: int | None = None, indent: int = 0) -> str:
    """One line of text, escaped, wrapped at the width; continuation lines indented."""
    room = width or columns()
    return textwrap.fill(
        safe(text),
        room,
        subsequent_indent=" " * indent,
        break_long_words=True,
        break_on_hyphens=False,
    )


def clip(text: str, width: int | None = None) -> str:
    """One line of text, escaped, cut with "…" at the width."""
    room = width or columns()
    cut = Text(safe(text))
    cut.truncate(room, overflow="ellipsis")
    return cut.plain


def key_values(pairs: Sequence[tuple[str, str]], width: int | None = None) -> str:
    """`name:  value` lines with the values aligned (values escaped, wrapped at the width)."""
    key_width = max((len(k) for k, _ in pairs), default=0) + 3
    return "\n".join(wrap(f"{k + ':':<{key_width}}{v}", width, key_width) for k, v in pairs)
