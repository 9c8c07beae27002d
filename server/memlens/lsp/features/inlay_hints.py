"""Inlay hints at the end of each line with memory: `▲ peak · Σ total` (inclusive numbers); the
peak part links to the allocation site of the line's biggest stack."""

from __future__ import annotations

from lsprotocol import types

from memlens.lsp import handlers, noise, previous_run
from memlens.lsp.handlers import Host
from memlens.lsp.session import Session
from memlens.reports.diff import signed
from memlens.units import format_bytes

# ▲ and Σ are inclusive everywhere (docs/design.md, "Per-line numbers"): the hover says so too
INCLUSIVE_PEAK = "▲ inclusive: live at the peak, in stacks through this line (callees included)"
INCLUSIVE_TOTAL = "Σ inclusive: allocated over the run by stacks through this line"


def hints(server: Host, uri: str, first: int, last: int) -> list[types.InlayHint]:
    """Hints for the lines first..last (0-based, inclusive) of a document."""
    session = server.session
    file = handlers.path_of(uri)
    if file is None or session.annotations is None or not session.settings.inlay_hints:
        return []
    notes = session.current_notes(file)
    if not notes:
        return []
    lines = server.workspace.get_text_document(uri).lines
    result: list[types.InlayHint] = []
    for line in range(max(first, 0), min(last, len(lines) - 1) + 1):
        note = notes.get(line)
        if note is None or noise.quiet_line(session, note):
            continue
        site = session.annotations.site(note.file, note.line)
        location = (
            handlers.frame_location(session, site.file, site.line)
            if site and handlers.openable(site.file)
            else None
        )
        text = lines[line].rstrip("\r\n")
        label = [
            types.InlayHintLabelPart(
                value=f"▲ {format_bytes(note.peak_bytes)}",
                location=location,
                tooltip=INCLUSIVE_PEAK,
            ),
            types.InlayHintLabelPart(
                value=f" · Σ {format_bytes(note.total_bytes)}", tooltip=INCLUSIVE_TOTAL
            ),
        ]
        if session.settings.show_change_since_previous_run:
            label += _change_part(session, note.file, note.line)
        result.append(
            types.InlayHint(
                position=types.Position(line=line, character=len(text)),
                label=label,
                padding_left=True,
            )
        )
    return result


def _change_part(session: Session, file: str, line: int) -> list[types.InlayHintLabelPart]:
    """` · +12.0 MiB`: the change of ▲ since the previous run, when there is one and it moved."""
    change = previous_run.change(session, file, line)
    if not change:
        return []
    return [
        types.InlayHintLabelPart(
            value=f" · {signed(change)}",
            tooltip="change of ▲ (held at the peak) since the previous run of this script",
        )
    ]


def register(server: Host) -> None:
    @server.feature(types.TEXT_DOCUMENT_INLAY_HINT)
    def inlay_hint(ls: Host, params: types.InlayHintParams) -> list[types.InlayHint]:
        r = params.range
        return hints(ls, params.text_document.uri, r.start.line, r.end.line)
