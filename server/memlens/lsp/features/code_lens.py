"""Code lenses: `▲ peak · Σ total` (inclusive) on every function with memory, and the run's
summary on line 0 of the profiled file."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lsprotocol import types

from memlens.lsp import protocol
from memlens.lsp.features import noise, test_lens
from memlens.units import format_bytes

if TYPE_CHECKING:
    from memlens.lsp.server import MemlensServer


def _at(line: int) -> types.Range:
    return types.Range(
        start=types.Position(line=line, character=0), end=types.Position(line=line, character=0)
    )


def lenses(server: MemlensServer, uri: str) -> list[types.CodeLens]:
    file = server.path_of(uri)
    if file is None or server.annotations is None or server.profile is None:
        return []
    result: list[types.CodeLens] = []
    if file == server.script:
        profile = server.profile
        title = (
            f"memlens: peak {format_bytes(profile.totals.peak_bytes)}"
            f" at {profile.totals.peak_ns / 1e9:.1f} s"
            f" · ran {profile.meta.duration_s:.1f} s"
        )
        result.append(
            types.CodeLens(
                range=_at(0),
                command=types.Command(
                    title=title,
                    command=protocol.OPEN_FLAME_GRAPH,
                    arguments=[uri],
                    tooltip=noise.hidden_text(server, file),
                ),
            )
        )
        result.append(
            types.CodeLens(
                range=_at(0),
                command=types.Command(
                    title="peak stack", command=protocol.SHOW_PEAK_STACK, arguments=[uri]
                ),
            )
        )
    for function in server.annotations.functions(file):
        line = server.current_line(file, function.first_line)
        if line is None or noise.quiet_function(server, function):
            continue
        usage = function.inclusive
        title = f"▲ {format_bytes(usage.peak_bytes)} · Σ {format_bytes(usage.alloc_bytes)}"
        arguments = [{"uri": uri, "line": line}]
        result.append(
            types.CodeLens(
                range=_at(line),
                command=types.Command(
                    title=title,
                    command=protocol.SHOW_STACK,
                    arguments=arguments,
                    tooltip="inclusive: the function's stacks, callees included",
                ),
            )
        )
    return result


def register(server: MemlensServer) -> None:
    @server.feature(types.TEXT_DOCUMENT_CODE_LENS)
    def code_lens(ls: MemlensServer, params: types.CodeLensParams) -> list[types.CodeLens]:
        uri = params.text_document.uri
        return lenses(ls, uri) + test_lens.lenses(ls, uri)
