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
    command.add_limit(p, table.DEFAULT_LIMIT)


def _sort(args: argparse.Namespace) -> str:
    if args.sort not in table.COLUMNS:
        raise CliError(f"unknown --sort column {args.sort!r}: one of {', '.join(table.COLUMNS)}")
    return str(args.sort)


def _text(profile: Profile, args: argparse.Namespace) -> str:
    _, shown = command.limits(args.limit, table.DEFAULT_LIMIT)
    return table.render(profile, args.measure.name, _sort(args), shown, boxed=command.boxed())


REPORT = command.Report(
    "table",
    "One row per source line: bytes, count, share, file:line, function.",
    text=_text,
    json=lambda profile, args: table.as_dicts(
        table.build(
            profile,
            args.measure.name,
            _sort(args),
            command.limits(args.limit, table.DEFAULT_LIMIT)[0],
        )
    ),
    json_help="the rows as JSON",
    measure_flags="rows",
    options=_options,
)
main = REPORT.main
