"""Diagnostics: the top lines by peak and the lines that leak (charged view: the innermost user
line), for every file of the profile (open or not), re-published (debounced) when a document is
edited."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from lsprotocol import types

from memlens.lsp import protocol
from memlens.lsp.annotations import ChargedLine
from memlens.lsp.features import previous_run
from memlens.reports import types as object_types
from memlens.units import format_bytes

if TYPE_CHECKING:
    from memlens.lsp.server import MemlensServer

DEBOUNCE_S = 0.3
MIB = 2**20
# Other features' diagnostics by file, merged into every build (test_lens: a failed test limit).
EXTRA: list[Callable[[MemlensServer], dict[str, list[types.Diagnostic]]]] = []


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


def leak_message(note: ChargedLine) -> str:
    count = note.charged["leak_count"]
    plural = "" if count == 1 else "s"
    leaked = format_bytes(note.charged["leak_bytes"])
    return f"charged to this line: leaked {leaked} ({count} allocation{plural})"


def held_by(server: MemlensServer, note: ChargedLine) -> str:
    """` · held by Cache.entries`: the nearest holder of the line's biggest held objects at exit
    ("" when the capture has no snapshot at exit or no holder for the line)."""
    profile = server.profile
    snapshot = object_types.find(profile, object_types.EXIT) if profile else None
    if profile is None or snapshot is None:
        return ""
    holders = object_types.holders_at_line(profile, snapshot, note.file, note.line)
    if not holders:
        return ""
    return f" · held by {object_types.nearest_holder(holders[0])}"


def related(server: MemlensServer, note: ChargedLine) -> list[types.DiagnosticRelatedInformation]:
    """The frames of the line's biggest peak stack, caller to callee."""
    assert server.annotations is not None
    return [
        types.DiagnosticRelatedInformation(
            location=server.frame_location(f.file, f.line),
            message=f"{f.function} ({f.file}:{f.line})",
        )
        for f in server.annotations.stack_frames(note)
        if f.file.startswith("/")
    ]


def build(server: MemlensServer) -> dict[str, list[types.Diagnostic]]:
    """Diagnostics by file, from the loaded profile and the current line maps."""
    annotations = server.annotations
    if annotations is None:
        return {}
    settings = server.settings.diagnostics
    floor = max(settings.min_mib * MIB, settings.min_share * annotations.peak_bytes)
    result: dict[str, list[types.Diagnostic]] = {f: [] for f in annotations.files()}
    top = [n for n in annotations.top("peak_bytes", None) if n.charged["peak_bytes"] >= floor][
        : settings.top_n
    ]
    for rank, note in enumerate(top):
        line = server.current_line(note.file, note.line)
        if line is None:
            continue
        result[note.file].append(
            types.Diagnostic(
                range=_range(line),
                message=peak_message(note),
                severity=types.DiagnosticSeverity.Warning
                if rank == 0
                else types.DiagnosticSeverity.Information,
                source="memlens",
                code="peak",
                related_information=related(server, note),
            )
        )
    if server.settings.leak_diagnostics and server.profile is not None and server.profile.complete:
        leak_floor = settings.min_mib * MIB
        for note in annotations.top("leak_bytes", None):
            line = server.current_line(note.file, note.line)
            if note.charged["leak_bytes"] < leak_floor or line is None:
                continue
            result[note.file].append(
                types.Diagnostic(
                    range=_range(line),
                    message=leak_message(note) + held_by(server, note),
                    severity=types.DiagnosticSeverity.Warning,
                    source="memlens",
                    code="leak",
                    related_information=related(server, note),
                )
            )
    for extra in EXTRA:
        for file, found in extra(server).items():
            result.setdefault(file, []).extend(found)
    return result


def publish(server: MemlensServer, *, final: bool) -> asyncio.Task[None]:
    """Replace every diagnostic we published, then tell the client (memlens/didUpdate, sent
    once the summary is built in a thread: the diagnostics do not wait for it)."""
    previous_run.observe(server)  # every load publishes: the one place that sees each run
    by_file = build(server)
    uris = {server.uri_of(f): d for f, d in by_file.items()}
    for uri in server.published - set(uris):
        server.text_document_publish_diagnostics(
            types.PublishDiagnosticsParams(uri=uri, diagnostics=[])
        )
    for uri, diagnostics in uris.items():
        server.text_document_publish_diagnostics(
            types.PublishDiagnosticsParams(uri=uri, diagnostics=diagnostics)
        )
    server.published = set(uris)

    async def did_update() -> None:
        summary: Any = await asyncio.to_thread(server.summary)
        server.protocol.notify(protocol.DID_UPDATE, {"final": final, "summary": summary})

    return asyncio.get_running_loop().create_task(did_update())


def schedule(server: MemlensServer) -> None:
    """Re-publish soon (typing sends many changes; one publish after they stop)."""
    if server.publish_task is not None:
        server.publish_task.cancel()

    async def later() -> None:
        await asyncio.sleep(DEBOUNCE_S)
        await publish(server, final=True)

    server.publish_task = asyncio.get_running_loop().create_task(later())


def register(server: MemlensServer) -> None:
    pass  # published on load, on clear and after edits (see documents.py and commands.py)
