"""The server's private 0700 directory (its captures), and the removal of the ones left behind by
servers that died without cleaning up (SIGKILL, the OOM killer).

A directory is named after the server's pid; at start, those whose server is gone are removed.
Only our own user's directories are touched, and a pid that is alive again (reused) keeps its
directory: removal errs on the side of leaving a directory, never of taking a live one.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import tempfile
from pathlib import Path

PREFIX = "memlens-lsp-"
_NAME = re.compile(rf"{re.escape(PREFIX)}(\d+)-[A-Za-z0-9_]+")


def create() -> Path:
    return Path(tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-"))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def remove_stale(root: str | None = None) -> list[Path]:
    """Remove the private directories of dead servers under `root` (the temp dir); the removed."""
    base = Path(root or tempfile.gettempdir())
    removed: list[Path] = []
    try:
        entries = list(base.iterdir())
    except OSError:
        return removed
    for entry in entries:
        found = _NAME.fullmatch(entry.name)
        if found is None or _alive(int(found[1])):
            continue
        try:
            info = entry.lstat()
        except OSError:
            continue
        if stat.S_ISDIR(info.st_mode) and info.st_uid == os.getuid():
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry)
    return removed
