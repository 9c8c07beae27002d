"""Custom requests: memlens/summary, memlens/hotspots, memlens/flamegraph, memlens/fileUsage."""

from __future__ import annotations

from typing import Any

from memlens import measures
from memlens.lsp import handlers, protocol
from memlens.lsp.annotations import ChargedLine
from memlens.lsp.handlers import Host
from memlens.lsp.session import Session
from memlens.units import format_bytes


def hotspot(session: Session, note: ChargedLine, metric: str) -> protocol.Hotspot:
    assert session.annotations is not None
    frames = session.annotations.stack_frames(note)
    where = handlers.frame(session, note.function, note.file, note.line)
    charged = note.charged
    lost = measures.value("lost_bytes", charged.__getitem__)  # what the editor calls leaked
    peak, total, leak = (
        format_bytes(n) for n in (charged["peak_bytes"], charged["alloc_bytes"], lost)
    )
    run_peak = session.annotations.peak_bytes
    return protocol.Hotspot(
        uri=where.uri,
        line=where.line,
        file=where.file,
        function=where.function,
        peak_bytes=charged["peak_bytes"],
        peak_text=peak,
        total_bytes=charged["alloc_bytes"],
        total_text=total,
        count=charged["alloc_count"],
        leak_bytes=lost,
        leak_text=leak,
        share=charged["peak_bytes"] / run_peak if run_peak else 0.0,
        label=f"charged: lost {leak}"
        if metric == "lost_bytes"
        else f"charged: {peak} at peak · {total} allocated",
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
        # lost at exit, as the diagnostics: not what module globals still reference
        leaks=[hotspot(session, n, "lost_bytes") for n in top("lost_bytes", limit)],
    )


def flamegraph(server: Host, raw: Any) -> protocol.FlameGraphResult | None:
    params = protocol.parse(protocol.FlameGraphParams, raw)
    profile = server.session.profile
    if profile is None:
        return None
    try:
        measures.of_metric(params.metric)
    except ValueError as error:
        raise protocol.ParamsError(str(error)) from None
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
