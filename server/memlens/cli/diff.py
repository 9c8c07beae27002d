"""`memlens diff OLD_CAP NEW_CAP`: what changed between two runs, per line (and per type when
both have snapshots). `memlens diff CAP --from A --to B`: between two snapshots of one run."""

from __future__ import annotations

from memlens.cli import CliError
from memlens.reports import command, diff


def main(argv: list[str]) -> int:
    p = command.Parser(
        prog="memlens diff",
        description="Two runs: the change per line (peak, total, leaked) and per type. "
        "One run with --from/--to: the change per type and per site between two snapshots.",
    )
    p.add_argument("captures", nargs="+", metavar="CAP", help="OLD_CAP NEW_CAP, or one CAP")
    p.add_argument("--from", dest="start", metavar="LABEL", help="the earlier snapshot")
    p.add_argument("--to", dest="end", metavar="LABEL", help="the later snapshot")
    p.add_argument(
        "--limit",
        type=command.count,
        metavar="N",
        help=f"at most N rows per table (default {diff.DEFAULT_LIMIT} on screen, all in --json;"
        " 0: all)",
    )
    p.add_argument("--json", action="store_true", help="the changes as JSON")
    args = p.parse_args(argv)
    limit = None if args.limit == 0 else args.limit
    if len(args.captures) > 2:
        raise CliError("give two captures (OLD_CAP NEW_CAP), or one with --from and --to")
    if len(args.captures) == 1:
        raise CliError("one capture needs --from LABEL and --to LABEL (or give two captures)")
    if args.start is not None or args.end is not None:
        raise CliError("--from and --to compare two snapshots of one capture; give one CAP")
    old, new = (command.load(path) for path in args.captures)
    changes = diff.by_line(old, new)
    if args.json:
        command.emit_json({"lines": diff.line_dicts(changes[:limit] if limit else changes)})
        return 0
    shown = diff.DEFAULT_LIMIT if args.limit is None else limit
    text = "\n".join(diff.runs_heading(old, new))
    text += "\n\n" + diff.render_lines(changes, shown, boxed=command.boxed())
    command.emit(text)
    return 0
