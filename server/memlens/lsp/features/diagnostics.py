"""Diagnostics on the lines that hold the peak (and the lines that leak).

The line holding most of the peak is a Warning, the others Information; relatedInformation lists
the frames of the line's biggest peak stack, caller to callee, for click-through to the source.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict

from lsprotocol import types

from memlens.lsp.protocol import DID_UPDATE
from memlens.lsp.server import MemlensServer, path_to_uri
from memlens.units import format_bytes

MiB = 1 << 20


def line_range(line: int) -> types.Range:
    return types.Range(start=types.Position(line=line, character=0), end=types.Position(line=line + 1, character=0))


def build(ls: MemlensServer) -> dict[str, list[types.Diagnostic]]:
    """Diagnostics by uri for the loaded profile and the current settings."""
    result: dict[str, list[types.Diagnostic]] = defaultdict(list)
    notes = ls.annotations
    if notes is None:
        return result
    limits = ls.settings.diagnostics
    peak = notes.peak_bytes
    floor = max(limits.min_mib * MiB, limits.min_share * peak)
    ranked = [n for n in notes.top("peak_bytes", None) if n.own["peak_bytes"] >= floor][: limits.top_n]
    for rank, note in enumerate(ranked):
        moved = ls.line_maps.get(note.file)
        now = moved.current(note.line) if moved else note.line - 1
        if now is None:  # edited since the run: no number rather than a wrong one
            continue
        own = note.own
        message = (
            f"▲ {format_bytes(own['peak_bytes'])} at peak ({own['peak_count']} allocations)"
            f" · Σ {format_bytes(own['alloc_bytes'])} allocated"
        )
        related = []
        for stack in ls.profile.lines.stacks_through(note.file, note.line, "peak_bytes", 1) if ls.profile else []:
            for frame in stack.frames:
                if frame.file.startswith("/"):
                    related.append(
                        types.DiagnosticRelatedInformation(
                            location=ls.frame_location(frame.file, frame.line),
                            message=f"{frame.function} ({frame.file}:{frame.line})",
                        )
                    )
        result[path_to_uri(note.file)].append(
            types.Diagnostic(
                range=line_range(now),
                message=message,
                severity=types.DiagnosticSeverity.Warning if rank == 0 else types.DiagnosticSeverity.Information,
                source="memlens",
                code="peak",
                related_information=related or None,
            )
        )
    if ls.settings.leak_diagnostics and ls.profile is not None and ls.profile.complete:
        for note in notes.top("leak_bytes", limits.top_n):
            if note.own["leak_bytes"] < limits.min_mib * MiB:
                continue
            moved = ls.line_maps.get(note.file)
            now = moved.current(note.line) if moved else note.line - 1
            if now is None:
                continue
            result[path_to_uri(note.file)].append(
                types.Diagnostic(
                    range=line_range(now),
                    message=(
                        f"leaked {format_bytes(note.own['leak_bytes'])} ({note.own['leak_count']} allocations)"
                        " still live when the program ended"
                    ),
                    severity=types.DiagnosticSeverity.Information,
                    source="memlens",
                    code="leak",
                )
            )
    return result


def publish(ls: MemlensServer, *, final: bool) -> None:
    """Push diagnostics (clearing files that no longer have any), ask the client to refresh
    lenses and hints, and tell it with memlens/didUpdate."""
    by_uri = build(ls)
    for uri in ls.published - set(by_uri):
        ls.text_document_publish_diagnostics(types.PublishDiagnosticsParams(uri=uri, diagnostics=[]))
    for uri, diagnostics in by_uri.items():
        ls.text_document_publish_diagnostics(types.PublishDiagnosticsParams(uri=uri, diagnostics=diagnostics))
    ls.published = set(by_uri)
    refresh(ls)
    from memlens.reports import summary

    ls.protocol.notify(DID_UPDATE, {"final": final, "summary": summary.build(ls.profile) if ls.profile else None})


def refresh(ls: MemlensServer) -> None:
    workspace = ls.client_capabilities.workspace
    if workspace and workspace.inlay_hint and workspace.inlay_hint.refresh_support:
        ls.workspace_inlay_hint_refresh(None)
    if workspace and workspace.code_lens and workspace.code_lens.refresh_support:
        ls.workspace_code_lens_refresh(None)


def schedule_publish(ls: MemlensServer, *, final: bool, delay: float = 0.0) -> None:
    """Publish soon, once: edits in quick succession publish once (debounced)."""
    if ls.publish_task is not None and not ls.publish_task.done():
        ls.publish_task.cancel()

    async def later() -> None:
        await asyncio.sleep(delay)
        publish(ls, final=final)

    ls.publish_task = asyncio.get_running_loop().create_task(later())


def register(server: MemlensServer) -> None:
    """Diagnostics are pushed by publish(); nothing to register."""
