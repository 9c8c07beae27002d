"""`memlens diff OLD_CAP NEW_CAP`: what changed between two runs, per line (and per type when
both have snapshots). `memlens diff CAP --from A --to B`: between two snapshots of one run."""

from __future__ import annotations

import argparse
from typing import Any

from memlens.cli import CliError, command
from memlens.model import Profile
from memlens.reports import diff, types
from memlens.snapshots import Snapshot


def main(argv: list[str]) -> int:
    p = command.Parser(
        prog="memlens diff",
        description="Two runs: the change per line (peak, total, leaked) and per type. "
        "One run with --from/--to: the change per type and per site between two snapshots.",
    )
    p.add_argument("captures", nargs="+", metavar="CAP", help="OLD_CAP NEW_CAP, or one CAP")
    p.add_argument("--from", dest="start", metavar="LABEL", help="the earlier snapshot")
    p.add_argument("--to", dest="end", metavar="LABEL", help="the later snapshot")
    command.add_limit(p, diff.DEFAULT_LIMIT, "rows per table")
    p.add_argument("--json", action="store_true", help="the changes as JSON")
    args = p.parse_args(argv)
    if len(args.captures) > 2:
        raise CliError("give two captures (OLD_CAP NEW_CAP), or one with --from and --to")
    try:
        if len(args.captures) == 1:
            return _snapshots(args)
        if args.start is not None or args.end is not None:
            raise CliError("--from and --to compare two snapshots of one capture; give one CAP")
        return _runs(args)
    except types.SnapshotError as error:
        raise CliError(str(error)) from None


def _limits(args: argparse.Namespace) -> tuple[int | None, int | None]:
    return command.limits(args.limit, diff.DEFAULT_LIMIT)


def _cut(rows: list[Any], limit: int | None) -> list[Any]:
    return rows if limit is None else rows[:limit]


def _snapshots(args: argparse.Namespace) -> int:
    if args.start is None or args.end is None:
        raise CliError("one capture needs --from LABEL and --to LABEL (or give two captures)")
    profile = command.load(args.captures[0])
    before = types.snapshot_at(profile, args.start)
    after = types.snapshot_at(profile, args.end)
    per_type, per_site = diff.by_object(profile, before, profile, after)
    json_limit, shown = _limits(args)
    if args.json:
        command.emit_json(
            {
                "from": args.start,
                "to": args.end,
                "types": diff.object_dicts(_cut(per_type, json_limit)),
                "sites": diff.object_dicts(_cut(per_site, json_limit)),
            }
        )
        return 0
    span = (after.t_ms - before.t_ms) / 1000
    heading = f"From snapshot {args.start!r} to {args.end!r} ({span:+.2f} s)"
    body = diff.render_objects(per_type, per_site, shown, boxed=command.boxed())
    command.emit(f"{heading}\n\n{body}")
    return 0


def _exit_snapshot(profile: Profile) -> Snapshot | None:
    try:
        return types.snapshot_at(profile, types.EXIT)
    except types.SnapshotError:
        return None


def _runs(args: argparse.Namespace) -> int:
    old, new = (command.load(path) for path in args.captures)
    changes = diff.by_line(old, new)
    before, after = _exit_snapshot(old), _exit_snapshot(new)
    objects = diff.by_object(old, before, new, after) if before and after else None
    json_limit, shown = _limits(args)
    if args.json:
        result: dict[str, Any] = {"lines": diff.line_dicts(_cut(changes, json_limit))}
        if objects is not None:
            result["types"] = diff.object_dicts(_cut(objects[0], json_limit))
            result["sites"] = diff.object_dicts(_cut(objects[1], json_limit))
        command.emit_json(result)
        return 0
    parts = ["\n".join(diff.runs_heading(old, new))]
    parts.append(diff.render_lines(changes, shown, boxed=command.boxed()))
    if objects is not None:
        parts.append(diff.render_objects(*objects, shown, boxed=command.boxed()))
    else:
        missing = " and ".join(
            name for name, s in (("the old run", before), ("the new run", after)) if s is None
        )
        parts.append(f"No change by type: {missing} has no snapshot of objects at exit.")
    command.emit("\n\n".join(parts))
    return 0
