"""`memlens table CAP`: one row per source line, by the memory it allocated itself."""

from __future__ import annotations

import argparse

from memlens.cli import CliError, command
from memlens.model import Profile
from memlens.reports import table


def _options(p: command.Parser) -> None:
    p.add_argument(
        "--sort",
        default=table.DEFAULT_SORT,
        metavar="COLUMN",
        help=f"one of {', '.join(table.COLUMNS)} (default {table.DEFAULT_SORT})",
    )
    p.add_argument(
        "--limit",
        type=command.count,
        metavar="N",
        help=f"at most N rows (default {table.DEFAULT_LIMIT} on screen, all in --json; 0: all)",
    )


def _sort(args: argparse.Namespace) -> str:
    if args.sort not in table.COLUMNS:
        raise CliError(f"unknown --sort column {args.sort!r}: one of {', '.join(table.COLUMNS)}")
    return str(args.sort)


def _text(profile: Profile, args: argparse.Namespace) -> str:
    shown = table.DEFAULT_LIMIT if args.limit is None else (args.limit or None)
    return table.render(profile, args.measure.name, _sort(args), shown, boxed=command.boxed())


REPORT = command.Report(
    "table",
    "One row per source line: bytes, count, share, file:line, function.",
    text=_text,
    json=lambda profile, args: table.as_dicts(
        table.build(profile, args.measure.name, _sort(args), args.limit or None)
    ),
    json_help="the rows as JSON",
    measure_flags="rows",
    options=_options,
)
main = REPORT.main
