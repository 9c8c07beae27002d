"""Custom requests: memlens/summary, memlens/hotspots, memlens/flamegraph, memlens/fileUsage."""

from __future__ import annotations

from typing import Any

from memlens.lsp import handlers, protocol
from memlens.lsp.annotations import OwnLine
from memlens.lsp.handlers import Host
from memlens.lsp.session import Session
from memlens.model import METRICS
from memlens.units import format_bytes


def hotspot(session: Session, note: OwnLine, metric: str) -> protocol.Hotspot:
    assert session.annotations is not None
    frames = session.annotations.stack_frames(note)
    where = handlers.frame(session, note.function, note.file, note.line)
    own = note.own
    peak, total, leak = (format_bytes(own[m]) for m in ("peak_bytes", "alloc_bytes", "leak_bytes"))
    run_peak = session.annotations.peak_bytes
    return protocol.Hotspot(
        uri=where.uri,
        line=where.line,
        file=where.file,
        function=where.function,
        peak_bytes=own["peak_bytes"],
        peak_text=peak,
        total_bytes=own["alloc_bytes"],
        total_text=total,
        count=own["alloc_count"],
        leak_bytes=own["leak_bytes"],
        leak_text=leak,
        share=own["peak_bytes"] / run_peak if run_peak else 0.0,
        label=f"leaked {leak}" if metric == "leak_bytes" else f"▲ {peak} · Σ {total}",
        stack=[handlers.frame(session, f.function, f.file, f.line) for f in frames],
    )


def hotspots(server: Host, raw: Any) -> protocol.HotspotsResult:
    params = protocol.parse(protocol.HotspotsParams, raw)
    session = server.session
    if session.annotations is None:
        return protocol.HotspotsResult(lines=[], leaks=[])
    limit = max(params.limit, 0)
    top = session.annotations.top
    return protocol.HotspotsResult(
        lines=[hotspot(session, n, "peak_bytes") for n in top("peak_bytes", limit)],
        leaks=[hotspot(session, n, "leak_bytes") for n in top("leak_bytes", limit)],
    )


def flamegraph(server: Host, raw: Any) -> protocol.FlameGraphResult | None:
    params = protocol.parse(protocol.FlameGraphParams, raw)
    profile = server.session.profile
    if profile is None:
        return None
    if params.metric not in METRICS:
        raise protocol.ParamsError(
            f"unknown metric {params.metric!r} (one of {', '.join(METRICS)})"
        )
    from memlens.reports import flamegraph as report

    html = report.render(
        profile, metric=params.metric, inverted=False, nonce=params.nonce,
        csp_source=params.csp_source,
    )  # fmt: skip
    return protocol.FlameGraphResult(html=html)


def file_usage(server: Host, raw: Any) -> protocol.FileUsageResult:
    params = protocol.parse(protocol.FileUsageParams, raw)
    session = server.session
    file = handlers.path_of(params.uri)
    if file is None or session.annotations is None:
        return protocol.FileUsageResult(lines=[])
    rows = [(line, note, False) for line, note in session.current_notes(file).items()]
    moved = session.line_maps.get(file)
    if moved is not None:  # edited lines: where they are, flagged so nobody trusts the numbers
        recorded = session.annotations.notes(file)
        rows += [
            (now, recorded[line], True) for line, now in moved.stale().items() if line in recorded
        ]
    share = session.annotations.share
    return protocol.FileUsageResult(
        lines=[
            protocol.LineUsage(
                line=line,
                peak_bytes=note.peak_bytes,
                total_bytes=note.total_bytes,
                share=share(note),
                stale=stale,
            )  # fmt: skip
            for line, note, stale in sorted(rows, key=lambda row: (row[0], row[2]))
        ]
    )


def summary(server: Host, raw: Any) -> protocol.Summary | None:
    protocol.parse(protocol.NoParams, raw)
    return server.session.summary()


def register(server: Host) -> None:
    handlers.register(
        server,
        (protocol.SUMMARY, summary),
        (protocol.HOTSPOTS, hotspots),
        (protocol.FLAMEGRAPH, flamegraph),
        (protocol.FILE_USAGE, file_usage),
    )
