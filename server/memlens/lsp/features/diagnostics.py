"""Diagnostics: the top lines by peak and the lines whose memory is lost at exit (charged view:
the innermost user line), for every file of the profile (open or not), re-published (debounced)
when a document is edited."""

from __future__ import annotations

import asyncio

from lsprotocol import types

from memlens import measures
from memlens.lsp import handlers, previous_run, protocol
from memlens.lsp.annotations import ChargedLine
from memlens.lsp.handlers import Host
from memlens.lsp.session import Session
from memlens.reports import types as object_types
from memlens.units import format_bytes

MIB = 2**20


def _range(line: int) -> types.Range:
    return types.Range(
        start=types.Position(line=line, character=0), end=types.Position(line=line + 1, character=0)
    )


def peak_message(note: ChargedLine) -> str:
    charged = note.charged
    count = charged["peak_count"]
    plural = "" if count == 1 else "s"
    return (
        f"charged to this line: {format_bytes(charged['peak_bytes'])} at peak"
        f" ({count} allocation{plural}) · {format_bytes(charged['alloc_bytes'])} allocated"
    )


def leak_message(note: ChargedLine, split: bool) -> str:
    """`lost 10.0 MiB (3 allocations)`: live at exit and reached from no root; `live at exit`
    when the capture cannot tell (no exit snapshot: all of it counts as lost)."""
    count = measures.value("lost_count", note.charged.__getitem__)
    plural = "" if count == 1 else "s"
    lost = format_bytes(measures.value("lost_bytes", note.charged.__getitem__))
    what = "lost" if split else "live at exit (not known whether still referenced)"
    return f"charged to this line: {what} {lost} ({count} allocation{plural})"


def _split(session: Session) -> bool:
    """Whether the shown profile tells memory still referenced at exit from lost memory."""
    return session.profile is not None and session.profile.referenced_at_exit is not None


def held_by(session: Session, note: ChargedLine) -> str:
    """` · held by Cache.entries`: the nearest holder of the line's biggest held objects at exit
    ("" when the capture has no snapshot at exit or no holder for the line)."""
    profile = session.profile
    snapshot = object_types.find(profile, object_types.EXIT) if profile else None
    if profile is None or snapshot is None:
        return ""
    holders = object_types.holders_at_line(profile, snapshot, note.file, note.line)
    if not holders:
        return ""
    return f" · held by {object_types.nearest_holder(holders[0])}"


def related(session: Session, note: ChargedLine) -> list[types.DiagnosticRelatedInformation]:
    """The frames of the line's biggest peak stack, caller to callee."""
    assert session.annotations is not None
    return [
        types.DiagnosticRelatedInformation(
            location=handlers.frame_location(session, f.file, f.line),
            message=f"{f.function} ({f.file}:{f.line})",
        )
        for f in session.annotations.stack_frames(note)
        if handlers.openable(f.file)
    ]


def _diagnostic(session: Session, note: ChargedLine, code: str, warning: bool) -> types.Diagnostic:
    line = session.current_line(note.file, note.line)
    assert line is not None
    severity = types.DiagnosticSeverity.Warning if warning else types.DiagnosticSeverity.Information
    return types.Diagnostic(
        range=_range(line),
        message=peak_message(note)
        if code == "peak"
        else leak_message(note, _split(session)) + held_by(session, note),
        severity=severity,
        source="memlens",
        code=code,
        related_information=related(session, note),
    )


def build(session: Session) -> dict[str, list[types.Diagnostic]]:
    """Diagnostics by file, from the shown profile and the current line maps."""
    annotations = session.annotations
    if annotations is None:
        return {}
    settings = session.settings.diagnostics
    floor = max(settings.min_mib * MIB, settings.min_share * annotations.peak_bytes)
    result: dict[str, list[types.Diagnostic]] = {f: [] for f in annotations.files()}
    top = [n for n in annotations.top("peak_bytes", None) if n.charged["peak_bytes"] >= floor][
        : settings.top_n
    ]
    for rank, note in enumerate(top):
        if session.current_line(note.file, note.line) is not None:
            result[note.file].append(_diagnostic(session, note, "peak", warning=rank == 0))
    profile = session.profile
    if session.settings.leak_diagnostics and profile is not None and profile.complete:
        # Lost memory only: what a module global or class attribute still references at exit
        # is what a program keeps to its end, not a leak (the hover says so).
        leak_floor = settings.min_mib * MIB
        for note in annotations.top("lost_bytes", None):
            if measures.value("lost_bytes", note.charged.__getitem__) < leak_floor:
                continue
            if session.current_line(note.file, note.line) is not None:
                result[note.file].append(_diagnostic(session, note, "leak", warning=True))
    return result


def publish(server: Host, *, final: bool) -> asyncio.Task[None]:
    """Replace every diagnostic we published, then tell the client (memlens/didUpdate, sent
    once the summary is built in a thread: the diagnostics do not wait for it)."""
    previous_run.observe(server.session)  # every load publishes: the one place that sees each run
    by_file = build(server.session)
    for source in server.diagnostic_sources:  # other features' (test_lens: failed limits)
        for file, found in source(server).items():
            by_file.setdefault(file, []).extend(found)
    by_uri = {handlers.uri_of(f): d for f, d in by_file.items()}
    for uri in server.published - set(by_uri):
        server.text_document_publish_diagnostics(
            types.PublishDiagnosticsParams(uri=uri, diagnostics=[])
        )
    for uri, diagnostics in by_uri.items():
        server.text_document_publish_diagnostics(
            types.PublishDiagnosticsParams(uri=uri, diagnostics=diagnostics)
        )
    server.published = set(by_uri)
    session = server.session

    async def did_update() -> None:
        summary = await asyncio.to_thread(session.summary)
        peak, live, lost = (
            summary.get(m) if summary else None for m in ("peak_bytes", "leak_bytes", "lost_bytes")
        )
        leak = live if lost is None else lost  # lost at exit, when the capture tells
        update = protocol.DidUpdateParams(
            final=final,
            summary=summary,
            peak_text=format_bytes(peak) if peak is not None else None,
            leak_text=format_bytes(leak) if leak else None,
        )
        server.protocol.notify(protocol.DID_UPDATE.name, protocol.wire(update))

    return asyncio.get_running_loop().create_task(did_update())


def register(server: Host) -> None:
    """Diagnostics are pushed: on load, on clear, after edits and settings (server.publish)."""
    server.publisher = lambda final: publish(server, final=final)
