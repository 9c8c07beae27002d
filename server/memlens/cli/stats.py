"""`memlens stats CAP [--json]`: totals, sizes, domains, top locations, threads, modules."""

from __future__ import annotations

from memlens.cli import command
from memlens.reports import stats

REPORT = command.Report(
    "stats",
    "Totals, peak, size histogram, domains, threads and modules.",
    text=lambda profile, args: stats.render(profile, boxed=command.boxed()),
    json=lambda profile, args: stats.build(profile),
    json_help=f"machine-readable, schema {stats.SCHEMA} (see memlens.reports.stats)",
)
main = REPORT.main
