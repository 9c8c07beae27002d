"""`memlens summary CAP`: peak and when, totals, and the top lines at peak with their stacks."""

from __future__ import annotations

from memlens.cli import command
from memlens.reports import summary


def _options(p: command.Parser) -> None:
    command.add_how_many(p, "--top", summary.TOP_LINES, "how many lines")
    p.add_argument(
        "--show-imports",
        action="store_true",
        help="list the import system's own lines instead of charging imports to the line "
        "that imported",
    )


REPORT = command.Report(
    "summary",
    "Peak memory (how much, when), totals, and the top lines at peak.",
    text=lambda profile, args: summary.render(
        profile, boxed=command.boxed(), top=args.top, show_imports=args.show_imports
    ),
    json=lambda profile, args: summary.build(profile, args.top, show_imports=args.show_imports),
    json_help="the summary as JSON",
    options=_options,
)
main = REPORT.main
