"""A source file listed with its memory on every line, like memory_profiler's line-by-line report
but exact: peak (live at the high-watermark) and total (allocated over the run), each inclusive
(stacks through the line, callees included) and self (allocations made by the line itself).
"""

from __future__ import annotations

import ast
import os
from dataclasses import dataclass

from memlens.model import INCLUSIVE, SELF, Frame, Profile
from memlens.reports import sources, terminal
from memlens.units import format_bytes


class LookupFailed(ValueError):
    """FILE or --function names nothing in the capture; the message says what there is."""


@dataclass(frozen=True)
class Line:
    line: int
    text: str | None  # None: the source could not be read
    peak_bytes: int
    alloc_bytes: int
    self_peak_bytes: int
    self_alloc_bytes: int


def resolve_file(profile: Profile, name: str) -> str:
    """The capture's file for what the user typed: the path as recorded, an absolute or
    relative path to it, or a base name if only one file has it."""
    files = sorted({frame.file for frame in profile.frames})
    if name in files:
        return name
    for candidate in (os.path.abspath(name), os.path.realpath(name)):
        if candidate in files:
            return candidate
    relative = name.removeprefix("./")
    matches = [f for f in files if f.endswith("/" + relative) or f.endswith("\\" + relative)]
    if not matches and "/" not in relative:
        matches = [f for f in files if os.path.basename(f) == relative]
    if len(matches) == 1:
        return matches[0]
    if matches:
        shown = terminal.safe(", ".join(matches[:5]))
        raise LookupFailed(
            f"{terminal.safe(name)} matches {len(matches)} files in the capture ({shown}); "
            "give more of its path"
        )
    user = [f for f in files if not f.startswith("<")]
    hint = (
        f"; files with memory: {terminal.safe(', '.join(user[:5]))}"
        f"{', ...' if len(user) > 5 else ''}"
        if user
        else ""
    )
    raise LookupFailed(f"{terminal.safe(name)} is not in the capture{hint}")


def _function_span(function: Frame, tree: ast.Module | None, last_line: int) -> tuple[int, int]:
    """First and last line of a function: from the source when there is one (decorators
    included: 3.11 code objects start at the first decorator)."""
    if function.function == "<module>":
        return 1, last_line
    if tree is not None:
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef | ast.Lambda):
                starts = {node.lineno, *(d.lineno for d in getattr(node, "decorator_list", []))}
                if function.first_line in starts and node.end_lineno is not None:
                    return min(starts), node.end_lineno
    return function.first_line, last_line


def build(profile: Profile, file: str, function: str | None = None) -> tuple[str, list[Line]]:
    """(the resolved file name, its lines): every source line of the file, or of the function(s)
    named `function` in it; without the source, the lines that have memory."""
    path = resolve_file(profile, file)
    source = sources.read_lines(path)
    _, frames = profile.line_keys
    metrics = ("peak_bytes", "alloc_bytes")
    self_view = profile.line_totals(SELF, metrics)
    through = profile.line_totals(INCLUSIVE, metrics)
    # the file's lines in the capture (with or without memory): line -> key
    with_memory = {frame.line: k for k, frame in enumerate(frames) if frame.file == path}
    last_line = max([len(source or []), *with_memory])
    if function is None:
        spans = [(1, last_line)]
    else:
        in_file = {
            (frame.function, frame.first_line): frame
            for frame in profile.frames
            if frame.file == path
        }
        functions = sorted(
            (
                f
                for f in in_file.values()
                if f.function == function or f.function.endswith("." + function)
            ),
            key=lambda f: f.first_line,
        )
        if not functions:
            names = sorted({f.function for f in in_file.values()})
            raise LookupFailed(
                terminal.safe(
                    f"no function {function!r} with memory in {path}; functions: {', '.join(names)}"
                )
            )
        tree = None
        if source is not None:
            try:
                tree = ast.parse("\n".join(source))
            except SyntaxError:
                tree = None  # a file changed since the run: fall back to the capture's lines
        names_wanted = {f.function for f in functions}
        in_function = {n for n, k in with_memory.items() if frames[k].function in names_wanted}
        spans = [_function_span(f, tree, max(in_function, default=f.first_line)) for f in functions]
    # every source line in the spans, and the lines with memory in them (a capture's line
    # numbers are never enumerated: a line of 2**40 is one line, not a range)
    listed = {n for low, high in spans for n in range(low, min(high, len(source or [])) + 1)}
    listed |= {n for n in with_memory if any(low <= n <= high for low, high in spans)}
    wanted = sorted(listed)
    out = []
    columns = [through[:, 0], through[:, 1], self_view[:, 0], self_view[:, 1]]
    for n in wanted:
        k = with_memory.get(n)
        text = source[n - 1] if source is not None and n <= len(source) else None
        figures = [int(column[k]) for column in columns] if k is not None else [0, 0, 0, 0]
        out.append(Line(n, text, *figures))
    return path, out


def render(
    profile: Profile,
    file: str,
    function: str | None = None,
    *,
    boxed: bool = False,
    width: int | None = None,
) -> str:
    path, lines = build(profile, file, function)

    def size(n: int) -> str:
        return format_bytes(n) if n else ""

    title = terminal.path(path) + (f" (function {function})" if function else "")
    if lines and all(line.text is None for line in lines):
        title += " — source not available, lines with memory only"
    return terminal.table(
        ["line", "peak", "total", "self peak", "self total", "source"],
        [
            [
                str(line.line),
                size(line.peak_bytes),
                size(line.alloc_bytes),
                size(line.self_peak_bytes),
                size(line.self_alloc_bytes),
                line.text if line.text is not None else "",
            ]
            for line in lines
        ],
        right=[True, True, True, True, True, False],
        clip=[False, False, False, False, False, True],
        boxed=boxed,
        width=width,
        title=title + "\npeak: live at the high-watermark, inclusive (through the line, callees "
        "included); total: allocated over the run, inclusive; self: by the line itself",
    )
