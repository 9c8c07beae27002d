"""`memlens summary CAP`: peak and when, totals, and the top lines at peak with their stacks."""

from __future__ import annotations

from memlens.reports import command, summary


def main(argv: list[str]) -> int:
    p = command.parser(
        "summary", "Peak memory (how much, when), totals, and the top lines at peak."
    )
    p.add_argument(
        "--top",
        type=command.positive,
        default=summary.TOP_LINES,
        metavar="N",
        help=f"how many lines (default {summary.TOP_LINES})",
    )
    p.add_argument(
        "--show-imports",
        action="store_true",
        help="list the import system's own lines instead of charging imports to the line "
        "that imported",
    )
    p.add_argument("--json", action="store_true", help="the summary as JSON")
    args = p.parse_args(argv)
    profile = command.load(args.capture)
    if args.json:
        command.emit_json(summary.build(profile, args.top, show_imports=args.show_imports))
    else:
        text = summary.render(
            profile, boxed=command.boxed(), top=args.top, show_imports=args.show_imports
        )
        command.emit(text)
    return 0
