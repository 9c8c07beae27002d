"""Custom requests: memlens/summary, memlens/hotspots, memlens/flamegraph, memlens/fileUsage."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from memlens import measures
from memlens.lsp import protocol
from memlens.lsp.annotations import ChargedLine
from memlens.lsp.features.commands import checked, plain
from memlens.units import format_bytes

if TYPE_CHECKING:
    from memlens.lsp.server import MemlensServer


def hotspot(server: MemlensServer, note: ChargedLine, metric: str) -> dict[str, Any]:
    assert server.annotations is not None
    frames = server.annotations.stack_frames(note)
    where = server.frame_dict(note.function, note.file, note.line)
    charged = note.charged
    label = (
        f"charged: leaked {format_bytes(charged['leak_bytes'])}"
        if metric == "leak_bytes"
        else f"charged: {format_bytes(charged['peak_bytes'])} at peak"
        f" · {format_bytes(charged['alloc_bytes'])} allocated"
    )
    return {
        **where,
        "peakBytes": charged["peak_bytes"],
        "totalBytes": charged["alloc_bytes"],
        "count": charged["alloc_count"],
        "leakBytes": charged["leak_bytes"],
        "share": charged["peak_bytes"] / server.annotations.peak_bytes
        if server.annotations.peak_bytes
        else 0.0,
        "label": label,
        "stack": [server.frame_dict(f.function, f.file, f.line) for f in frames],
    }


def hotspots(server: MemlensServer, raw: Any) -> dict[str, Any]:
    params = protocol.parse(protocol.HotspotsParams, raw)
    if server.annotations is None:
        return {"lines": [], "leaks": []}
    limit = max(params.limit, 0)
    return {
        "lines": [
            hotspot(server, n, "peak_bytes") for n in server.annotations.top("peak_bytes", limit)
        ],
        "leaks": [
            hotspot(server, n, "leak_bytes") for n in server.annotations.top("leak_bytes", limit)
        ],
    }


def flamegraph(server: MemlensServer, raw: Any) -> dict[str, Any] | None:
    params = protocol.parse(protocol.FlameGraphParams, raw)
    if server.profile is None:
        return None
    try:
        measures.of_metric(params.metric)
    except ValueError as error:
        raise protocol.ParamsError(str(error)) from None
    from memlens.reports import flamegraph as report

    html = report.render(
        server.profile,
        metric=params.metric,
        inverted=False,
        nonce=params.nonce,
        csp_source=params.cspSource,
    )
    return {"html": html}


def file_usage(server: MemlensServer, raw: Any) -> dict[str, Any]:
    params = protocol.parse(protocol.FileUsageParams, raw)
    file = server.path_of(params.uri)
    if file is None or server.annotations is None:
        return {"lines": []}
    notes = server.current_notes(file)
    rows = [(line, note, False) for line, note in notes.items()]
    moved = server.line_maps.get(file)
    if moved is not None:  # edited lines: where they are, flagged so nobody trusts the numbers
        recorded = server.annotations.notes(file)
        rows += [
            (now, recorded[line], True) for line, now in moved.stale().items() if line in recorded
        ]
    return {
        "lines": [
            {
                "line": line,
                "peakBytes": note.peak_bytes,
                "totalBytes": note.total_bytes,
                "share": server.annotations.share(note),
                "stale": stale,
            }
            for line, note, stale in sorted(rows, key=lambda row: (row[0], row[2]))
        ]
    }


def summary(server: MemlensServer, raw: Any) -> dict[str, Any] | None:
    protocol.parse(protocol.NoParams, raw)
    return server.summary()


def register(server: MemlensServer) -> None:
    for name, handler in (
        (protocol.SUMMARY, summary),
        (protocol.HOTSPOTS, hotspots),
        (protocol.FLAMEGRAPH, flamegraph),
        (protocol.FILE_USAGE, file_usage),
    ):
        server.feature(name)(checked(name, handler, lambda args: plain(args[0])))
