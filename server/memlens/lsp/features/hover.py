"""Hover on an annotated line: a table of its numbers and its three biggest stacks."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lsprotocol import types

from memlens.units import format_bytes

if TYPE_CHECKING:
    from memlens.lsp.server import MemlensServer


def markdown(server: MemlensServer, uri: str, line: int) -> str | None:
    file = server.path_of(uri)
    if file is None or server.annotations is None:
        return None
    note = server.current_notes(file).get(line)
    if note is None:
        return None
    usage = note.inclusive.inclusive
    peak = usage.peak_bytes
    python, native, mmap = usage.peak_bytes_by_domain
    share = (lambda n: f"{100 * n / peak:.0f}%") if peak else (lambda n: "–")
    rows = [
        "| memlens | |",
        "|---|---:|",
        f"| peak | {format_bytes(peak)} ({usage.peak_count} allocations) |",
        f"| allocated | {format_bytes(usage.alloc_bytes)} ({usage.alloc_count} allocations) |",
        f"| leaked | {format_bytes(usage.leak_bytes)} ({usage.leak_count} allocations) |",
        f"| temporary | {format_bytes(usage.temp_bytes)} ({usage.temp_count} allocations) |",
        f"| Python objects / native | {share(python)} / {share(native + mmap)} |",
    ]
    stacks = server.annotations.biggest_stacks(note.file, note.line, "peak_bytes", 3)
    if stacks:
        rows.append("")
        rows.append("**Biggest stacks**")
    for number, stack in enumerate(stacks, 1):
        rows.append("")
        rows.append(f"{number}. ▲ {format_bytes(stack.usage.peak_bytes)}")
        for f in stack.frames:
            place = f"{f.file}:{f.line}"
            if f.file.startswith("/"):
                location = server.frame_location(f.file, f.line)
                place = f"[{place}]({location.uri}#L{location.range.start.line + 1})"
            rows.append(f"   - `{f.function}` {place}")
    return "\n".join(rows)


def register(server: MemlensServer) -> None:
    @server.feature(types.TEXT_DOCUMENT_HOVER)
    def hover(ls: MemlensServer, params: types.HoverParams) -> types.Hover | None:
        text = markdown(ls, params.text_document.uri, params.position.line)
        if text is None:
            return None
        return types.Hover(contents=types.MarkupContent(kind=types.MarkupKind.Markdown, value=text))
