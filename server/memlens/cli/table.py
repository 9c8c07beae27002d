"""`memlens table CAP`: one row per source line, by the memory it allocated itself."""

from __future__ import annotations

from memlens.cli import CliError
from memlens.reports import command, table


def main(argv: list[str]) -> int:
    p = command.parser(
        "table", "One row per source line: bytes, count, share, file:line, function."
    )
    command.add_kind_flags(p, "rows")
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
    p.add_argument("--json", action="store_true", help="the rows as JSON")
    args = p.parse_args(argv)
    if args.sort not in table.COLUMNS:
        raise CliError(f"unknown --sort column {args.sort!r}: one of {', '.join(table.COLUMNS)}")
    profile = command.load(args.capture)
    limit = None if args.limit == 0 else args.limit
    if args.json:
        command.emit_json(table.as_dicts(table.build(profile, args.kind, args.sort, limit)))
    else:
        shown = table.DEFAULT_LIMIT if args.limit is None else limit
        command.emit(table.render(profile, args.kind, args.sort, shown, boxed=command.boxed()))
    return 0
