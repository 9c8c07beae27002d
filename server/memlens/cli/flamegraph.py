"""`memlens flamegraph CAP [-o out.html]`: a self-contained HTML flame graph with a timeline."""

from __future__ import annotations

import argparse
from pathlib import Path

from memlens.cli import command
from memlens.model import Profile
from memlens.reports import flamegraph


def _options(p: command.Parser) -> None:
    p.add_argument(
        "-o", "--output", metavar="HTML", help="where to write it (default: CAP with .html)"
    )
    p.add_argument("--inverted", action="store_true", help="allocating functions at the top")


def _text(profile: Profile, args: argparse.Namespace) -> str:
    output = args.output or str(Path(args.capture).with_suffix(".html"))
    page = flamegraph.render(profile, args.measure.metric, inverted=args.inverted)
    command.write_file(output, page)
    return f"wrote {output}"


REPORT = command.Report(
    "flamegraph",
    "A self-contained HTML flame graph (works offline).",
    text=_text,
    measure_flags="the graph",
    options=_options,
)
main = REPORT.main
