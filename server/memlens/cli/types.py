"""`memlens types CAP [--at exit|LABEL]`: live Python objects by type, with the lines that made
them and what holds them."""

from __future__ import annotations

from memlens.cli import CliError, command
from memlens.reports import types


def main(argv: list[str]) -> int:
    p = command.parser(
        "types", "Live Python objects by type: objects, bytes, top allocation sites, holder."
    )
    p.add_argument(
        "--at",
        default=types.EXIT,
        metavar="LABEL",
        help=f"the snapshot: {types.EXIT} (default) or a label given to memlens.snapshot()",
    )
    p.add_argument(
        "--limit",
        type=command.count,
        metavar="N",
        help=f"at most N types (default {types.DEFAULT_LIMIT} on screen, all in --json; 0: all)",
    )
    p.add_argument("--json", action="store_true", help="the types as JSON")
    args = p.parse_args(argv)
    profile = command.load(args.capture)
    limit = None if args.limit == 0 else args.limit
    try:
        if args.json:
            rows = types.by_type(profile, types.snapshot_at(profile, args.at))
            command.emit_json(types.as_dicts(rows if limit is None else rows[:limit]))
        else:
            shown = types.DEFAULT_LIMIT if args.limit is None else limit
            command.emit(types.render(profile, args.at, shown, boxed=command.boxed()))
    except types.SnapshotError as error:
        raise CliError(str(error)) from None
    return 0
