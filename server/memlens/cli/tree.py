"""`memlens tree CAP`: the call tree of the biggest stacks at peak."""

from __future__ import annotations

from memlens.cli import command
from memlens.reports import tree


def _options(p: command.Parser) -> None:
    command.add_how_many(p, "--limit", tree.DEFAULT_STACKS, "the N biggest stacks")


REPORT = command.Report(
    "tree",
    "The call tree of the biggest stacks, with inclusive and self bytes.",
    text=lambda profile, args: tree.render(
        profile, args.measure.metric, args.limit, boxed=command.boxed()
    ),
    json=lambda profile, args: [
        root.as_dict() for root in tree.build(profile, args.measure.metric, args.limit)
    ],
    json_help="the tree as JSON",
    measure_flags="the tree",
    options=_options,
)
main = REPORT.main
