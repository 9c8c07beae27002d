"""The call tree of the biggest stacks (at the peak by default): the top stacks merged into one
tree, each node with its total (itself and its callees, over the whole capture) and own bytes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from memlens.model import METRICS, Profile
from memlens.reports import terminal
from memlens.units import format_bytes

DEFAULT_STACKS = 10


@dataclass
class Node:
    function: str
    file: str
    line: int
    total: int  # bytes of every stack through this node, callees included
    own: int  # bytes of the stacks that end here
    children: list[Node] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "function": self.function,
            "file": self.file,
            "line": self.line,
            "total": self.total,
            "own": self.own,
            "children": [child.as_dict() for child in self.children],
        }


def build(profile: Profile, metric: str = "peak_bytes", stacks: int = DEFAULT_STACKS) -> list[Node]:
    """The roots of the tree of the `stacks` biggest stacks by `metric`, biggest child first.
    Allocations with no Python frame, if among the biggest, are one root "(no Python frame)"."""
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}: one of {', '.join(METRICS)}")
    own, inclusive = profile.node_totals(metric)
    parent = profile.stack_parent
    # the biggest stack ends (own value), ties in stack-id order
    ends = np.nonzero(own > 0)[0]
    ends = ends[np.argsort(-own[ends], kind="stable")][:stacks]
    orphan = int(profile.stats.values[profile.stats.stack < 0, METRICS.index(metric)].sum())

    made: dict[int, Node] = {}
    roots: list[Node] = []
    for end in ends.tolist():
        chain = []
        node = end
        while node >= 0 and node not in made:
            chain.append(node)
            node = int(parent[node])
        for trie_node in reversed(chain):
            frame = profile.frames[int(profile.stack_frame[trie_node])]
            made[trie_node] = Node(
                frame.function,
                frame.file,
                frame.line,
                int(inclusive[trie_node]),
                int(own[trie_node]),
            )
            up = int(parent[trie_node])
            (made[up].children if up >= 0 else roots).append(made[trie_node])
    if orphan and (len(ends) < stacks or orphan >= int(own[ends[-1]])):
        roots.append(Node("(no Python frame)", "", 0, orphan, orphan))
    _sort(roots)
    return roots


def _sort(nodes: list[Node]) -> None:
    nodes.sort(key=lambda n: n.total, reverse=True)
    for node in nodes:
        _sort(node.children)


def render(
    profile: Profile,
    metric: str = "peak_bytes",
    stacks: int = DEFAULT_STACKS,
    *,
    boxed: bool = False,
    width: int | None = None,
) -> str:
    """The tree as text: one line per node, cut with "…" at the width (never wrapped)."""
    roots = build(profile, metric, stacks)
    if not roots:
        return f"No allocations with {metric}."
    whole = sum(r.total for r in roots)
    # TTY: box-drawing branches; plain: ASCII, so logs and pipes stay readable anywhere
    tee, last, bar, space = ("├─ ", "└─ ", "│  ", "   ") if boxed else ("|- ", "`- ", "|  ", "   ")
    rows: list[list[str]] = []

    def walk(node: Node, prefix: str, branch: str) -> None:
        where = f"  {terminal.location(node.file, node.line)}" if node.file else ""
        rows.append(
            [
                format_bytes(node.total),
                format_bytes(node.own),
                f"{node.total / whole:.1%}" if whole else "-",
                f"{prefix}{branch}{node.function}{where}",
            ]
        )
        child_prefix = prefix + ("" if not branch else space if branch == last else bar)
        for i, child in enumerate(node.children):
            walk(child, child_prefix, last if i == len(node.children) - 1 else tee)

    for root in roots:
        walk(root, "", "")
    return terminal.table(
        ["total", "own", "share", "call tree (caller → callee)"],
        rows,
        right=[True, True, True, False],
        clip=[False, False, False, True],
        boxed=boxed,
        width=width,
        title=f"Call tree of the {stacks} biggest stacks by {metric}",
    )
