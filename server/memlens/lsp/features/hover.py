"""Hover on an annotated line: a table of its numbers and its three biggest stacks.

Names come from captures, which are files people share: every function and file name is escaped
(control characters shown as \\xNN, markdown punctuation backslash-escaped, code spans fenced
longer than any run of backticks inside) so a name can never close its code span, make a link,
or reach the renderer as HTML.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from lsprotocol import types

from memlens.lsp import handlers, noise
from memlens.lsp.handlers import Host
from memlens.lsp.session import Session
from memlens.model import Profile, Usage
from memlens.reports import types as object_types
from memlens.snapshots import Holder
from memlens.units import format_bytes

# C0/C1 controls, line and paragraph separators, and bidi overrides (which reorder what is shown)
_INVISIBLE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_PUNCTUATION = re.compile(r"([!-/:-@\[-`{-~])")  # every ASCII punctuation character


def visible(text: str) -> str:
    return _INVISIBLE.sub(lambda m: f"\\x{ord(m[0]):02x}" if ord(m[0]) < 256 else
                          f"\\u{ord(m[0]):04x}", text)  # fmt: skip


def markdown_text(text: str) -> str:
    """Text that markdown shows as is: no emphasis, link, autolink, entity or HTML."""
    return _PUNCTUATION.sub(r"\\\1", visible(text))


def markdown_code(text: str) -> str:
    """A code span that holds `text` whatever backticks it contains."""
    shown = visible(text)
    fence = "`" * (max(map(len, re.findall("`+", shown)), default=0) + 1)
    pad = " " if not shown.strip(" ") or shown[0] == "`" or shown[-1] == "`" else ""
    return f"{fence}{pad}{shown}{pad}{fence}"


def exit_rows(session: Session, usage: Usage) -> list[str]:
    """Memory live at exit, and when the capture tells, how much of it is still referenced
    (a module global, class attribute, running frame or C global reaches it) and lost."""

    def row(title: str, measure: str) -> str:
        size = format_bytes(usage.get(f"{measure}_bytes"))
        return f"| {title} | {size} ({usage.get(f'{measure}_count')} allocations) |"

    rows = [row("live at exit", "leak")]
    if session.profile is not None and session.profile.referenced_at_exit is not None:
        rows += [row("still referenced at exit", "ref"), row("lost", "lost")]
    return rows


def markdown(session: Session, uri: str, line: int) -> str | None:
    file = handlers.path_of(uri)
    if file is None or session.annotations is None:
        return None
    note = session.current_notes(file).get(line)
    if note is None:
        return None
    usage = note.inclusive.inclusive
    peak = usage.peak_bytes
    python, native, mmap = usage.peak_bytes_by_domain
    share = (lambda n: f"{100 * n / peak:.0f}%") if peak else (lambda n: "–")
    rows = [
        "| memlens, inclusive (stacks through this line) | |",
        "|---|---:|",
        f"| peak | {format_bytes(peak)} ({usage.peak_count} allocations) |",
        f"| allocated | {format_bytes(usage.alloc_bytes)} ({usage.alloc_count} allocations) |",
        *exit_rows(session, usage),
        f"| temporary | {format_bytes(usage.temp_bytes)} ({usage.temp_count} allocations) |",
        f"| Python objects / native | {share(python)} / {share(native + mmap)} |",
        "",
        *symbols(session, peak, usage.alloc_bytes),
    ]
    stacks = session.annotations.biggest_stacks(note.file, note.line, "peak_bytes", 3)
    if stacks:
        rows.append("")
        rows.append("**Biggest stacks**")
    for number, stack in enumerate(stacks, 1):
        rows.append("")
        rows.append(f"{number}. ▲ {format_bytes(stack.usage.peak_bytes)}")
        for f in stack.frames:
            place = markdown_text(f"{f.file}:{f.line}")
            if f.file.startswith("/"):  # the uri is percent-encoded: no ( ) < > or space in it
                location = handlers.frame_location(session, f.file, f.line)
                place = f"[{place}]({location.uri}#L{location.range.start.line + 1})"
            rows.append(f"   - {markdown_code(f.function)} {place}")
    rows += objects(session, note.file, note.line)
    hidden = noise.hidden_text(session, file)
    if hidden is not None:
        rows += ["", f"_{markdown_text(hidden)}_"]
    return "\n".join(rows)


TYPES_SHOWN = 5  # types listed in a hover
HOLDERS_SHOWN = 2


def objects(session: Session, file: str, line: int) -> list[str]:
    """The Python objects live at exit (while a run is live: at its newest snapshot) that the
    line made (or a function it called), by type, and the chains of references that hold them,
    each step a link to the line that made it."""
    profile = session.profile
    if profile is None or not profile.snapshots:
        return []
    snapshot = object_types.find(profile, object_types.EXIT) or profile.snapshots[-1]
    held = object_types.at_line(profile, snapshot, file, line)
    if not held:
        return []
    when = "exit" if snapshot.label == object_types.EXIT else f"snapshot {snapshot.label!r}"
    rows = [
        "",
        f"**Live objects at {markdown_text(when)}** (made on this line or in what it calls)",
        "",
    ]
    rows += [
        f"- {markdown_code(name)}: {count:,} objects, {format_bytes(size)}"
        for name, count, size in held[:TYPES_SHOWN]
    ]
    if len(held) > TYPES_SHOWN:
        rows.append(f"- and {len(held) - TYPES_SHOWN:,} more types")
    rows += ["", f"_{markdown_text(object_types.NOT_AT_PEAK.capitalize())}._"]
    for holder in object_types.holders_at_line(profile, snapshot, file, line)[:HOLDERS_SHOWN]:
        rows += ["", *holder_path(session, holder)]
    return rows


def holder_path(session: Session, holder: Holder) -> list[str]:
    """`Held by` and the chain, nearest the objects first; a step made at a known line links
    there."""
    assert session.profile is not None
    rows = [
        f"**Held by** ({holder.count:,} {markdown_code(holder.type)} objects,"
        f" {format_bytes(holder.bytes)}):"
    ]
    for index, step in enumerate(holder.steps):
        text = markdown_text(step.text)
        made, line, _ = object_types.site_of(session.profile, step.stack)
        place = definition(session.profile, holder, index) or (
            (made, line) if step.stack >= 0 else None
        )
        if place is not None and place[0].startswith("/"):
            location = handlers.frame_location(session, *place)
            text = f"[{text}]({location.uri}#L{location.range.start.line + 1})"
        rows.append(f"- {text}")
    return rows


def definition(profile: Profile, holder: Holder, index: int) -> tuple[str, int] | None:
    """Where a module or class step is defined (its file's line 1, its `class` line), found
    from the capture's module-level frames and a scan of the source; None for other steps or
    when it cannot be found. Such steps often have no allocating stack (made before tracking)."""
    kind, _, name = holder.steps[index].text.partition(" ")
    if kind == "module":
        file = _module_file(profile, name)
        return None if file is None else (file, 1)
    if kind != "class" or index + 1 >= len(holder.steps):
        return None
    owner, _, module = holder.steps[index + 1].text.partition(" ")
    file = _module_file(profile, module) if owner == "module" else None
    return None if file is None else _class_line(file, name.rpartition(".")[2])


def _module_file(profile: Profile, module: str) -> str | None:
    """The file of a module that ran code under tracking (any frame of it)."""
    files = {f.file for f in profile.frames}
    ends: tuple[str, ...] = ()
    if module == "__main__":
        if profile.meta.argv:
            ends = (f"/{os.path.basename(profile.meta.argv[0])}",)
    else:
        path = module.replace(".", "/")
        ends = (f"/{path}.py", f"/{path}/__init__.py")
    return next((f for f in sorted(files) if f.endswith(ends)), None) if ends else None


def _class_line(file: str, name: str) -> tuple[str, int] | None:
    try:
        source = Path(file).read_text(errors="replace")
    except OSError:
        return None
    pattern = re.compile(rf"\s*class\s+{re.escape(name)}\b")
    for number, text in enumerate(source.splitlines(), 1):
        if pattern.match(text):
            return file, number
    return None


def symbols(session: Session, peak: int, total: int) -> list[str]:
    """What the inline ▲ and Σ of this line mean, in words (issue 16: one meaning per symbol)."""
    when = session.profile.totals.peak_ns / 1e9 if session.profile else 0.0
    return [
        f"▲ {format_bytes(peak)}: held at the run's peak ({when:.2f} s in) by memory allocated on"
        " this line or in the functions it calls.  ",
        f"Σ {format_bytes(total)}: allocated over the whole run by this line and the functions it"
        " calls, freed or not.",
    ]


def register(server: Host) -> None:
    @server.feature(types.TEXT_DOCUMENT_HOVER)
    def hover(ls: Host, params: types.HoverParams) -> types.Hover | None:
        text = markdown(ls.session, params.text_document.uri, params.position.line)
        if text is None:
            return None
        return types.Hover(contents=types.MarkupContent(kind=types.MarkupKind.Markdown, value=text))
