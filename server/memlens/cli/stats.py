"""`memlens stats CAP [--json]`: totals, sizes, domains, top locations, threads, modules."""

from __future__ import annotations

from memlens.reports import command, stats


def main(argv: list[str]) -> int:
    p = command.parser("stats", "Totals, peak, size histogram, domains, threads and modules.")
    p.add_argument(
        "--json",
        action="store_true",
        help=f"machine-readable, schema {stats.SCHEMA} (see memlens.reports.stats)",
    )
    args = p.parse_args(argv)
    profile = command.load(args.capture)
    if args.json:
        command.emit_json(stats.build(profile))
    else:
        command.emit(stats.render(profile, boxed=command.boxed()))
    return 0
