"""Source lines of the profiled program's files, read at report time when they still exist.

Bounded: only regular files (never a FIFO or a device), at most MAX_BYTES of each; a file that
changed since the run simply shows its current text, as an editor would.
"""

from __future__ import annotations

import os
import stat

MAX_BYTES = 4 * 2**20


def read_lines(path: str, max_bytes: int = MAX_BYTES) -> list[str] | None:
    """The file's lines (tabs expanded; at most `max_bytes` read), or None when it cannot be
    read as a regular file."""
    if not path or path.startswith("<"):
        return None  # <frozen ...>, <string>, <stdin>: not files
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except (OSError, ValueError):
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        with os.fdopen(fd, "rb", closefd=False) as stream:
            data = stream.read(max_bytes)
    except OSError:
        return None
    finally:
        os.close(fd)
    text = data.decode("utf-8", errors="replace")
    return [line.rstrip("\r\n").expandtabs(4) for line in text.splitlines()]


class LineTexts:
    """`text(file, line)`: the stripped source of a line, each file read once, at most
    `budget` bytes over all files (files past it fall back to no text)."""

    def __init__(self, budget: int = 64 * 2**20, max_chars: int = 160) -> None:
        self._files: dict[str, list[str] | None] = {}
        self._budget = budget
        self._max_chars = max_chars

    def text(self, file: str, line: int) -> str:
        if file not in self._files:
            lines = read_lines(file, min(MAX_BYTES, self._budget)) if self._budget > 0 else None
            self._budget -= sum(len(text) + 1 for text in lines) if lines else 0
            self._files[file] = lines
        lines = self._files[file]
        if not lines or not 1 <= line <= len(lines):
            return ""
        return lines[line - 1].strip()[: self._max_chars]
