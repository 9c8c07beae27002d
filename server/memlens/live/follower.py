"""Follow a run's capture while it is written: `CAP.partial` (checkpoints), then `CAP`.

The tracker writes each checkpoint to a temp file and renames it over `CAP.partial`, so a read
never sees half a file; at the end it writes `CAP` and removes `CAP.partial`. A file is re-read
only when its mtime (or size) changes. Files older than `since_ns` belong to an earlier run with
the same name and are ignored.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from memlens.capture import CaptureError, load
from memlens.model import Profile

PARTIAL_SUFFIX = ".partial"


@dataclass(frozen=True)
class Snapshot:
    """What one poll found: a profile (or why it could not be read), and from which file."""

    path: Path
    profile: Profile | None
    error: str | None
    final: bool  # read from the complete capture: the run is over
    written_ns: int  # the file's mtime: when the tracker wrote it


def capture_paths(path: str | os.PathLike[str]) -> tuple[Path, Path]:
    """(CAP.partial, CAP) for either name."""
    text = os.fspath(path)
    if text.endswith(PARTIAL_SUFFIX):
        return Path(text), Path(text[: -len(PARTIAL_SUFFIX)])
    return Path(text + PARTIAL_SUFFIX), Path(text)


def _signature(path: Path) -> tuple[int, int] | None:
    """(mtime_ns, size) of a file, None if it is not there."""
    try:
        status = path.stat()
    except OSError:
        return None
    return status.st_mtime_ns, status.st_size


class Follower:
    """Polls the two files of one capture; `poll()` returns a Snapshot when something changed."""

    def __init__(self, path: str | os.PathLike[str], since_ns: int = 0) -> None:
        self.partial, self.final = capture_paths(path)
        self.since_ns = since_ns
        self.done = False  # the complete capture has been read
        self._seen: tuple[Path, tuple[int, int]] | None = None

    def _newest(self) -> tuple[Path, tuple[int, int]] | None:
        """The newer of CAP and CAP.partial that is not older than since_ns."""
        found = [
            (signature, path)
            for path in (self.final, self.partial)
            if (signature := _signature(path)) is not None and signature[0] >= self.since_ns
        ]
        if not found:
            return None
        # CAP wins a tie: it is written before CAP.partial is removed
        signature, path = max(found, key=lambda item: (item[0][0], item[1] == self.final))
        return path, signature

    def poll(self) -> Snapshot | None:
        if self.done:
            return None
        newest = self._newest()
        if newest is None or newest == self._seen:
            return None
        path, (written_ns, _) = newest
        final = path == self.final
        try:
            profile, error = load(path), None
        except CaptureError as failure:
            if not path.exists():  # removed between stat and read (the run just ended): next poll
                return None
            profile, error = None, str(failure)
        self._seen = newest
        self.done = final and profile is not None
        return Snapshot(path, profile, error, final, written_ns)
