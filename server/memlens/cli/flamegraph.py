"""`memlens flamegraph CAP [-o out.html]`: a self-contained HTML flame graph with a timeline."""

from __future__ import annotations

from pathlib import Path

from memlens.reports import command, flamegraph

METRICS = {"peak": "peak_bytes", **command.KIND_FLAGS}


def main(argv: list[str]) -> int:
    p = command.parser("flamegraph", "A self-contained HTML flame graph (works offline).")
    p.add_argument(
        "-o", "--output", metavar="HTML", help="where to write it (default: CAP with .html)"
    )
    command.add_kind_flags(p, "the graph")
    p.add_argument("--inverted", action="store_true", help="allocating functions at the top")
    args = p.parse_args(argv)
    profile = command.load(args.capture)
    output = args.output or str(Path(args.capture).with_suffix(".html"))
    page = flamegraph.render(profile, METRICS[args.kind], inverted=args.inverted)
    command.write_file(output, page)
    command.emit(f"wrote {output}")
    return 0
