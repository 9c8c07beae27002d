"""Code lenses: `▲ peak · Σ total` (inclusive) on every function with memory, and the run's
summary on line 0 of the profiled file."""

from __future__ import annotations

from lsprotocol import types

from memlens.lsp import handlers, noise, protocol
from memlens.lsp.handlers import Host
from memlens.lsp.session import Session
from memlens.units import format_bytes

LIVE_TITLE = "▲ Σ when the run ends"


def _at(line: int) -> types.Range:
    return types.Range(
        start=types.Position(line=line, character=0), end=types.Position(line=line, character=0)
    )


def lenses(session: Session, uri: str) -> list[types.CodeLens]:
    file = handlers.path_of(uri)
    if file is None or session.annotations is None or session.profile is None:
        return []
    result: list[types.CodeLens] = []
    if file == session.script:
        profile = session.profile
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
                    tooltip=noise.hidden_text(session, file),
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
    for function in session.annotations.functions(file):
        line = session.current_line(file, function.first_line)
        if line is None or noise.quiet_function(session, function):
            continue
        usage = function.inclusive
        title = f"▲ {format_bytes(usage.peak_bytes)} · Σ {format_bytes(usage.alloc_bytes)}"
        if session.live:
            # VS Code redraws lenses later than inline hints, so a lens with a checkpoint's
            # numbers could sit below its lines' final ones: a function's numbers wait for
            # the end of the run (its lines show the live ones)
            title = LIVE_TITLE
        arguments = [{"uri": uri, "line": line}]
        result.append(
            types.CodeLens(
                range=_at(line),
                command=types.Command(
                    title=title,
                    command=protocol.SHOW_PEAK_STACK,
                    arguments=arguments,
                    tooltip="inclusive: the function's stacks, callees included",
                ),
            )
        )
    return result


def register(server: Host) -> None:
    @server.feature(types.TEXT_DOCUMENT_CODE_LENS)
    def code_lens(ls: Host, params: types.CodeLensParams) -> list[types.CodeLens]:
        uri = params.text_document.uri
        others = [lens for source in ls.lens_sources for lens in source(ls, uri)]
        return lenses(ls.session, uri) + others
