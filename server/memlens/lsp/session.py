"""What the editor is shown: the profile, its per-line picture, and where its lines are now.

Plain state with no LSP in it (tested and read without a server). The server holds one Session;
features read it through `handlers` and change it only with `show`, `clear` and the line maps.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from memlens.lsp.annotations import Annotations, LineMap, LineNote, user_code_filter
from memlens.lsp.settings import Settings
from memlens.model import Profile


class Session:
    def __init__(self) -> None:
        self.settings = Settings()
        self.roots: list[str] = []  # the workspace folders, as paths
        self.profile: Profile | None = None
        self.annotations: Annotations | None = None
        self.script: str | None = None  # the profiled file (its run lens goes there)
        self.live = False  # the profile is a checkpoint of a run still going
        self.capture_path: Path | None = None  # our private copy, removed when replaced
        self.line_maps: dict[str, LineMap] = {}  # file -> where its annotated lines are now
        self._summary: tuple[Profile, dict[str, Any]] | None = None

    # --- the shown profile ---------------------------------------------------------------------

    def show(
        self,
        profile: Profile | None,
        annotations: Annotations | None,
        script: str | None,
        *,
        live: bool = False,
    ) -> None:
        self.profile, self.annotations, self.script = profile, annotations, script
        self.live = live
        self.line_maps.clear()

    def clear(self) -> None:
        self.show(None, None, None)
        self.replace_capture(None)

    def annotate(self, profile: Profile) -> Annotations:
        """The per-line picture. CPU work: a loaded profile gets it in a thread; a settings change
        (include_libraries) rebuilds it on the loop."""
        is_user = user_code_filter(self.roots, self.settings.include_libraries)
        return Annotations(profile, is_user)

    def replace_capture(self, path: Path | None) -> None:
        """Our private capture of the shown profile; the one it replaces is removed."""
        if self.capture_path is not None and self.capture_path != path:
            self.capture_path.unlink(missing_ok=True)
        self.capture_path = path

    def summary(self) -> dict[str, Any] | None:
        """The summary of the shown profile (memlens.reports.summary, built once per profile)."""
        profile = self.profile
        if profile is None:
            return None
        cached = self._summary
        if cached is not None and cached[0] is profile:
            return cached[1]
        from memlens.reports import summary

        built = summary.build(profile)
        self._summary = (profile, built)
        return built

    @property
    def peak_bytes(self) -> int:
        return self.profile.totals.peak_bytes if self.profile is not None else 0

    # --- lines, as recorded and as they are now ------------------------------------------------

    def line_map(self, file: str) -> LineMap:
        return self.line_maps.setdefault(file, LineMap())

    def current_notes(self, file: str) -> dict[int, LineNote]:
        """The annotated lines of a file by their current 0-based line (edited lines left out)."""
        if self.annotations is None:
            return {}
        moved = self.line_maps.get(file)
        notes = self.annotations.notes(file)
        if moved is None:
            return {line - 1: note for line, note in notes.items()}
        result: dict[int, LineNote] = {}
        for line, note in notes.items():
            now = moved.current(line)
            if now is not None:
                result[now] = note
        return result

    def current_line(self, file: str, line: int) -> int | None:
        """Where a recorded (1-based) line of a file is now (0-based); None once edited."""
        moved = self.line_maps.get(file)
        return moved.current(line) if moved else line - 1

    def shown_line(self, file: str, line: int) -> int:
        """Where to point at a recorded (1-based) line now (0-based): where it moved, or where it
        was when it has been edited away."""
        now = self.current_line(file, line)
        return max(line - 1 if now is None else now, 0)

    def recorded_line(self, file: str, current: int) -> int | None:
        """The recorded (1-based) line now shown at a current 0-based line."""
        note = self.current_notes(file).get(current)
        return note.line if note else (current + 1 if file not in self.line_maps else None)

    def outside_workspace(self, path: str) -> bool:
        """Whether a file lies outside every workspace folder (after `..` and symlinks)."""
        real = os.path.realpath(path)
        for root in self.roots:
            top = os.path.realpath(root)
            if real == top or real.startswith(top.rstrip(os.sep) + os.sep):
                return False
        return True
