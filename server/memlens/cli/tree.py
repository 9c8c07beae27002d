"""`memlens tree CAP`: the call tree of the biggest stacks at peak."""

from __future__ import annotations

from memlens.reports import command, tree

METRICS = {"peak": "peak_bytes", **command.KIND_FLAGS}


def main(argv: list[str]) -> int:
    p = command.parser("tree", "The call tree of the biggest stacks, with total and own bytes.")
    command.add_kind_flags(p, "the tree")
    p.add_argument(
        "--limit",
        type=command.positive,
        default=tree.DEFAULT_STACKS,
        metavar="N",
        help=f"the N biggest stacks (default {tree.DEFAULT_STACKS})",
    )
    p.add_argument("--json", action="store_true", help="the tree as JSON")
    args = p.parse_args(argv)
    profile = command.load(args.capture)
    metric = METRICS[args.kind]
    if args.json:
        command.emit_json([root.as_dict() for root in tree.build(profile, metric, args.limit)])
    else:
        command.emit(tree.render(profile, metric, args.limit, boxed=command.boxed()))
    return 0
