"""What the editor shows, computed from a Profile, with no LSP in it (tested on its own).

Two of the model's three views per line (docs/design.md, "Per-line numbers"; model.py computes
them):
- inclusive: bytes whose stack passes through the line (hints, lenses and hovers: ▲ and Σ);
- charged: bytes whose innermost line *of the user's code* is the line, so `np.zeros(...)` or a
  library call is charged to the user's line that made it. Diagnostics and hotspots rank by
  this: it points at the line to change, not at `main()`.

`LineMap` moves annotations with their lines when the document is edited.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from memlens import measures, origins
from memlens.lsp.cells import is_cell
from memlens.model import CHARGED, Frame, FunctionStats, LazyMap, LineStats, Profile, StackUsage


def user_code_filter(roots: Iterable[str], include_libraries: bool) -> Callable[[str], bool]:
    """Whether a file is the user's: a real path, inside the workspace if there is one, and not
    a library (unless include_libraries)."""
    root_prefixes = tuple(str(Path(r)) + "/" for r in roots)

    def is_user(file: str) -> bool:
        if is_cell(file):  # a notebook's cell (cells.remap): the user's, wherever it is saved
            return True
        if not file.startswith("/"):  # <frozen ...>, <string>, <stdin>
            return False
        if not include_libraries and origins.kind(file) != origins.USER:
            return False
        return not root_prefixes or file.startswith(root_prefixes)

    return is_user


@dataclass(frozen=True)
class LineNote:
    """One source line with memory."""

    file: str
    line: int  # 1-based, as recorded
    function: str
    inclusive: LineStats
    charged: dict[str, int]  # measures.COLUMNS -> value in the charged view

    @property
    def peak_bytes(self) -> int:
        return self.inclusive.inclusive.peak_bytes

    @property
    def total_bytes(self) -> int:
        return self.inclusive.inclusive.alloc_bytes


@dataclass(frozen=True)
class ChargedLine:
    """A user line and what is charged to it (the charged view): what diagnostics and hotspots
    rank by. Computed without the (slower) inclusive line index."""

    file: str
    line: int  # 1-based
    function: str
    charged: dict[str, int]  # measures.COLUMNS -> value
    stack_id: int  # the biggest peak stack charged to the line (-1: none)


class Annotations:
    """The per-line picture of one profile, restricted to the user's files.

    The charged numbers (diagnostics, hotspots) are ready at once; the inclusive ones (hints, hover,
    lenses) come from the profile's LineIndex, built on first use (see `by_file`)."""

    def __init__(self, profile: Profile, is_user: Callable[[str], bool]) -> None:
        self.profile = profile
        self.peak_bytes = profile.totals.peak_bytes
        user_file = {file: is_user(file) for file in {f.file for f in profile.frames}}
        sums = profile.line_totals(CHARGED, measures.COLUMNS, user_file.__getitem__)
        best_stack = profile.line_top_stacks(CHARGED, "peak_bytes", user_file.__getitem__)
        frames = profile.line_keys[1]
        with_memory = np.flatnonzero(sums.any(axis=1)).tolist()
        self.charged: dict[tuple[str, int], ChargedLine] = {}
        for key, values in zip(with_memory, sums[with_memory].tolist(), strict=True):
            frame = frames[key]
            self.charged[(frame.file, frame.line)] = ChargedLine(
                frame.file,
                frame.line,
                frame.function,
                dict(zip(measures.COLUMNS, values, strict=True)),
                best_stack.get(key, -1),
            )
        self._user_file = user_file
        self._sites: dict[tuple[str, int], Frame | None] = {}

    @cached_property
    def by_file(self) -> Mapping[str, dict[int, LineNote]]:
        """Every user line with memory, with inclusive numbers, by file and 1-based line; each
        file's notes are built when first asked for (the editor asks for a few files)."""
        lines = self.profile.lines
        files = [f for f in lines.files() if self._user_file.get(f, False)]
        return LazyMap({f: i for i, f in enumerate(files)}, lambda i: self._notes_of(files[i]))

    def _notes_of(self, file: str) -> dict[int, LineNote]:
        zero = dict.fromkeys(measures.COLUMNS, 0)
        result: dict[int, LineNote] = {}
        for key in self.profile.lines.keys_in_file(file):
            stats = self.profile.lines.by_line[key]
            charged = self.charged.get(key)
            result[key[1]] = LineNote(
                file, key[1], stats.function, stats, charged.charged if charged else zero
            )
        return result

    def peaks(self) -> dict[tuple[str, int], int]:
        """Every user line's inclusive peak bytes (the numbers of by_file), without building
        the notes."""
        return {
            key: peak
            for key, peak in self.profile.lines.inclusive_column("peak_bytes").items()
            if self._user_file.get(key[0], False)
        }

    def warm(self) -> None:
        """Build the inclusive numbers and the stack lookup now (in a thread), not on the first
        hint request."""
        for file in self.by_file:
            for note in self.by_file[file].values():
                self.site(note.file, note.line)
                return

    def stack_frames(self, line: ChargedLine) -> tuple[Frame, ...]:
        return self.profile.frames_of(line.stack_id) if line.stack_id >= 0 else ()

    def files(self) -> list[str]:
        """The user files with memory charged to them."""
        return sorted({file for file, _ in self.charged})

    def notes(self, file: str) -> dict[int, LineNote]:
        return self.by_file.get(file, {})

    def top(self, metric: str = "peak_bytes", limit: int | None = 10) -> list[ChargedLine]:
        """Lines by their charged `metric` (a measure's bytes or count, measures.py), biggest
        first (zeros left out)."""
        # Summed inline: this runs over every charged line at each publish.
        signed = measures.terms(metric)
        ranked = []
        for n in self.charged.values():
            amount = 0
            for sign, name in signed:
                amount += sign * n.charged[name]
            if amount > 0:
                ranked.append((-amount, n.file, n.line, n))
        ranked.sort(key=lambda entry: entry[:3])
        notes = [n for _, _, _, n in ranked]
        return notes if limit is None else notes[:limit]

    def functions(self, file: str) -> list[FunctionStats]:
        return [
            f
            for f in self.profile.lines.functions_in_file(file)
            if f.function != "<module>" and (f.inclusive.peak_bytes or f.inclusive.alloc_bytes)
        ]

    def biggest_stacks(
        self, file: str, line: int, metric: str = "peak_bytes", limit: int = 3
    ) -> list[StackUsage]:
        return self.profile.lines.stacks_through(file, line, metric, limit)

    def site(self, file: str, line: int) -> Frame | None:
        """Where the line's biggest peak stack allocates (its innermost frame); cached, as hints
        ask for the same lines again on every scroll."""
        key = (file, line)
        if key not in self._sites:
            stacks = self.biggest_stacks(file, line, "peak_bytes", 1)
            self._sites[key] = stacks[0].frames[-1] if stacks and stacks[0].frames else None
        return self._sites[key]

    def quiet(self, peak_bytes: int, total_bytes: int, share: float) -> bool:
        """Numbers too small to show: under `share` of the run's peak and of its total."""
        total = self.profile.totals.alloc_bytes
        return peak_bytes < share * self.peak_bytes and total_bytes < share * total

    def share(self, note: LineNote) -> float:
        return note.peak_bytes / self.peak_bytes if self.peak_bytes else 0.0


class LineMap:
    """Where each recorded line (1-based) of one document is now (0-based). A line that was
    itself edited is stale: it has a position but no trustworthy numbers."""

    def __init__(self) -> None:
        self._moved: dict[int, int] = {}  # recorded line -> current line; absent = unmoved
        self._stale: set[int] = set()

    def position(self, line: int) -> int:
        return self._moved.get(line, line - 1)

    def current(self, line: int) -> int | None:
        """The current line of a recorded line, or None once it is stale."""
        return None if line in self._stale else self.position(line)

    def stale(self) -> dict[int, int]:
        """Stale recorded lines -> where they are now."""
        return {line: self.position(line) for line in self._stale}

    def apply(
        self, start: tuple[int, int], end: tuple[int, int], text: str, known: Iterable[int]
    ) -> None:
        """One `didChange` range edit ((line, character) positions, 0-based). `known` are the
        recorded lines that have annotations."""
        (start_line, start_char), (end_line, end_char) = start, end
        added = text.count("\n")
        delta = added - (end_line - start_line)
        # The range ends at the start of a line and the new text ends with a newline (or whole
        # lines are deleted): that line's content is untouched, it only moves.
        intact_end = end_char == 0 and (text.endswith("\n") or (not text and start_char == 0))
        for line in known:
            now = self.position(line)
            if now < start_line:
                continue
            if now > end_line or (now == end_line and intact_end):
                self._moved[line] = now + delta
            else:  # the line itself was edited: its numbers no longer hold
                self._stale.add(line)
                self._moved[line] = min(now, start_line + added)

    def forget(self, known: Iterable[int]) -> None:
        """The whole text was replaced: every annotated line is stale."""
        self._stale.update(known)
