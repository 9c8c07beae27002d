"""A notebook's code cells as one script, and the script's lines back as (cell, line).

No LSP here (tested on its own). The cells run in order as one module, one script line per cell
line, so a script line maps to exactly one cell line. IPython syntax cannot run under plain
Python: a line magic or shell escape (`%time f()`, `!pip ...`) becomes `pass` at its indentation
(a block that held only that line still parses) with the line kept as a comment; a cell magic
(`%%bash`) comments out its whole cell, unless its body is Python (`%%time`), when only the magic
line goes. Cells are named as the user counts them: "cell 2" is the second code cell, lines are
1-based.

A profile of the script is then remapped (`remap`): its frames in the script become frames in
the cells' documents, whose file name is the cell's uri (`vscode-notebook-cell:...`). Each cell's
module-level code is the function `<module>` on the cell's line 1, so the model's function
totals are the cell's totals.
"""

from __future__ import annotations

import copy
import functools
import re
from dataclasses import dataclass, field

from memlens.model import Frame, Profile

CELL_SCHEME = "vscode-notebook-cell"
# cell magics whose body is Python: only their first line is IPython's
PYTHON_CELL_MAGICS = frozenset({"time", "timeit", "capture", "prun", "memray_flamegraph"})
_LINES = re.compile(r"\r\n|\r|\n")  # LSP's line breaks


def is_cell(name: str) -> bool:
    """Whether a frame's file name (or a document uri) is a notebook cell's."""
    return name.startswith(CELL_SCHEME + ":")


@dataclass(frozen=True)
class Cell:
    uri: str
    text: str


@dataclass(frozen=True)
class Span:
    """Where one cell's lines are in the script."""

    uri: str
    number: int  # 1-based, among the code cells
    start: int  # the script's 1-based line of the cell's line 1
    lines: int


@dataclass
class NotebookScript:
    text: str
    spans: list[Span]
    commented: list[tuple[int, int, str]] = field(default_factory=list)  # (cell, line, text)

    def locate(self, line: int) -> tuple[Span, int] | None:
        """The cell and its 1-based line of a 1-based script line."""
        for span in self.spans:
            if span.start <= line < span.start + span.lines:
                return span, line - span.start + 1
        return None

    def where(self, line: int) -> str:
        """A script line as the user reads it: "cell 2, line 3"."""
        found = self.locate(line)
        return f"cell {found[0].number}, line {found[1]}" if found else f"line {line}"


def _magic_free(number: int, lines: list[str], commented: list[tuple[int, int, str]]) -> list[str]:
    """A cell's lines as plain Python, the IPython ones commented out (and listed)."""
    first = lines[0].strip()
    if first.startswith("%%"):
        name = first[2:].split(maxsplit=1)[0] if first[2:].strip() else ""
        if name not in PYTHON_CELL_MAGICS:
            commented.append((number, 1, lines[0]))
            return ["# " + line if line.strip() else line for line in lines]
    out: list[str] = []
    for index, line in enumerate(lines):
        stripped = line.lstrip()
        if stripped.startswith(("%", "!")):
            commented.append((number, index + 1, line))
            indent = line[: len(line) - len(stripped)]
            line = f"{indent}pass  # {stripped}"
        out.append(line)
    return out


def build(cells: list[Cell]) -> NotebookScript:
    """The script that runs the cells in order, and where each cell's lines are in it."""
    spans: list[Span] = []
    commented: list[tuple[int, int, str]] = []
    lines: list[str] = []
    for number, cell in enumerate(cells, start=1):
        own = _magic_free(number, _LINES.split(cell.text), commented)
        spans.append(Span(cell.uri, number, len(lines) + 1, len(own)))
        lines += own
    return NotebookScript("\n".join(lines) + "\n", spans, commented)


def syntax_problem(script: NotebookScript) -> str | None:
    """The first cell that does not parse, named with its line; None when all do."""
    lines = script.text.split("\n")
    for span in script.spans:
        source = "\n".join(lines[span.start - 1 : span.start - 1 + span.lines]) + "\n"
        try:
            compile(source, f"cell {span.number}", "exec", dont_inherit=True)
        except SyntaxError as error:
            where = f"line {error.lineno}" if error.lineno else "its text"
            return f"syntax error in cell {span.number}, {where}: {error.msg}"
        except ValueError as error:  # a NUL character
            return f"cell {span.number} cannot be compiled: {error}"
    return None


def name_lines(text: str, script_file: str, script: NotebookScript) -> str:
    """Output with the script's `File "<script>", line N` (tracebacks) as the cell and line."""
    quoted = re.escape(f'File "{script_file}", line ')
    return re.sub(quoted + r"(\d+)", lambda m: script.where(int(m.group(1))), text)


def exception_in(stderr: list[str], script_file: str, script: NotebookScript) -> str | None:
    """The cell, line and exception ("cell 2, line 3 raised ValueError: bad") of a traceback in
    the output: its innermost line in the cells, and the first unindented line after it; None
    without one."""
    marker = f'File "{script_file}", line '
    for back in range(len(stderr) - 1, -1, -1):
        at = stderr[back].find(marker)
        if at < 0:
            continue
        number = re.match(r"\d+", stderr[back][at + len(marker) :])
        raised = next((s for s in stderr[back + 1 :] if s.strip() and not s[0].isspace()), None)
        if number is None or raised is None:
            return None
        return f"{script.where(int(number.group()))} raised {raised.strip()}"
    return None


@functools.cache
def _cached_names() -> frozenset[str]:
    cached = functools.cached_property
    return frozenset(n for n, v in vars(Profile).items() if isinstance(v, cached))


def remap(profile: Profile, script_file: str, script: NotebookScript) -> Profile:
    """The profile with its frames in the script moved to their cells (other frames as they
    were): the same stacks and numbers, shown on the cells' documents."""
    frames: list[Frame] = []
    for frame in profile.frames:
        found = script.locate(frame.line) if frame.file == script_file else None
        if found is None:
            frames.append(frame)
            continue
        span, line = found
        first = script.locate(frame.first_line) if frame.function != "<module>" else None
        first_line = first[1] if first is not None and first[0] is span else 1
        frames.append(Frame(frame.function, span.uri, line, first_line))
    mapped = copy.copy(profile)
    for name in _cached_names():  # built from the old frames
        mapped.__dict__.pop(name, None)
    mapped.frames = frames
    return mapped
