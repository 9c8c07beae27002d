"""Source lines of the profiled program's files, read at report time when they still exist.

Bounded: only regular files (never a FIFO or a device), at most MAX_BYTES of each; a file that
changed since the run simply shows its current text, as an editor would.
"""

from __future__ import annotations

import os
import stat

MAX_BYTES = 4 * 2**20


def read_lines(path: str) -> list[str] | None:
    """The file's lines (tabs expanded), or None when it cannot be read as a regular file."""
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
            data = stream.read(MAX_BYTES)
    except OSError:
        return None
    finally:
        os.close(fd)
    text = data.decode("utf-8", errors="replace")
    return [line.rstrip("\r\n").expandtabs(4) for line in text.splitlines()]


class LineTexts:
    """`text(file, line)`: the stripped source of a line, each file read once, at most
    `max_files` files (the rest fall back to no text)."""

    def __init__(self, max_files: int = 1000, max_chars: int = 160) -> None:
        self._files: dict[str, list[str] | None] = {}
        self._max_files = max_files
        self._max_chars = max_chars

    def text(self, file: str, line: int) -> str:
        if file not in self._files:
            self._files[file] = read_lines(file) if len(self._files) < self._max_files else None
        lines = self._files[file]
        if not lines or not 1 <= line <= len(lines):
            return ""
        return lines[line - 1].strip()[: self._max_chars]
