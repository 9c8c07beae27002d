"""`memlens types CAP [--at exit|LABEL]`: live Python objects by type, with the lines that made
them and what holds them."""

from __future__ import annotations

import argparse
from typing import Any

from memlens.cli import command
from memlens.model import Profile
from memlens.reports import types


def _options(p: command.Parser) -> None:
    p.add_argument(
        "--at",
        default=types.EXIT,
        metavar="LABEL",
        help=f"the snapshot: {types.EXIT} (default) or a label given to memlens.snapshot()",
    )
    command.add_limit(p, types.DEFAULT_LIMIT, "types")


def _json(profile: Profile, args: argparse.Namespace) -> list[dict[str, Any]]:
    limit, _ = command.limits(args.limit, types.DEFAULT_LIMIT)
    rows = types.by_type(profile, types.snapshot_at(profile, args.at))
    return types.as_dicts(rows if limit is None else rows[:limit])


def _text(profile: Profile, args: argparse.Namespace) -> str:
    _, shown = command.limits(args.limit, types.DEFAULT_LIMIT)
    return types.render(profile, args.at, shown, boxed=command.boxed())


REPORT = command.Report(
    "types",
    "Live Python objects by type: objects, bytes, top allocation sites, holder.",
    text=_text,
    json=_json,
    json_help="the types as JSON",
    options=_options,
    errors=(types.SnapshotError,),
)
main = REPORT.main
