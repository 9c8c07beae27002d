"""Writing a file whole or not at all, for every file memlens writes from Python."""

from __future__ import annotations

import contextlib
import os
import sys

# No pathlib here: `memlens run` imports this module, and the program must start with the
# modules plain python gives it (on 3.10 pathlib brings urllib, fnmatch and ntpath).


def write_atomically(path: str | os.PathLike[str], data: bytes) -> None:
    """Write `data` to a temp file next to `path`, flush it to disk, then rename it over
    `path`: a reader sees the old file or the new one, never half of one. On failure the
    OSError propagates and no temp file is left behind. The file gets the usual
    permissions (0o666 less the umask), as a plain open() would give it."""
    target = os.fspath(path)
    directory, name = os.path.split(target)
    temp = os.path.join(directory, f".{name}.{os.getpid()}.tmp")
    try:
        with open(temp, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temp, target)
    except BaseException:
        with contextlib.suppress(OSError):  # the directory itself may not be writable
            os.unlink(temp)
        raise


def reason(error: BaseException) -> str:
    """Why an OS call failed, in the OS's words ("Permission denied"), on one line: what every
    "cannot read/write X: ..." message of memlens ends with."""
    return one_line(str(getattr(error, "strerror", None) or error))


def one_line(text: str) -> str:
    """The text on one line: control characters (a newline in a file name) as escapes."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def drop_stdout() -> None:
    """The reader of stdout went away (`memlens table CAP | head`): point stdout at /dev/null,
    so that neither a later write nor the interpreter's final flush fails again."""
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
