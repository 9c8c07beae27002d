"""The call tree of the biggest stacks (at the peak by default): the top stacks merged into one
tree, each node with its inclusive bytes (itself and its callees, over the whole capture) and its
self bytes (the stacks that end at it)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from memlens import measures
from memlens.model import Profile
from memlens.reports import terminal
from memlens.units import format_bytes

DEFAULT_STACKS = 10


@dataclass
class Node:
    function: str
    file: str
    line: int
    inclusive: int  # bytes of every stack through this node, callees included
    self_bytes: int  # self: bytes of the stacks that end here
    children: list[Node] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "function": self.function,
            "file": self.file,
            "line": self.line,
            "inclusive": self.inclusive,
            "self": self.self_bytes,
            "children": [child.as_dict() for child in self.children],
        }


def build(profile: Profile, metric: str = "peak_bytes", stacks: int = DEFAULT_STACKS) -> list[Node]:
    """The roots of the tree of the `stacks` biggest stacks by `metric`, biggest child first.
    Allocations with no Python frame, if among the biggest, are one root "(no Python frame)"."""
    measures.of_metric(metric)  # ValueError naming the choices
    node_self, inclusive = profile.node_totals(metric)
    parent = profile.stack_parent
    # the biggest stack ends (self value), ties in stack-id order
    ends = np.nonzero(node_self > 0)[0]
    ends = ends[np.argsort(-node_self[ends], kind="stable")][:stacks]
    orphan = int(measures.column(metric, profile.stats.values[profile.stats.stack < 0]).sum())

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
                int(node_self[trie_node]),
            )
            up = int(parent[trie_node])
            (made[up].children if up >= 0 else roots).append(made[trie_node])
    if orphan and (len(ends) < stacks or orphan >= int(node_self[ends[-1]])):
        roots.append(Node("(no Python frame)", "", 0, orphan, orphan))
    _sort(roots)
    return roots


def _sort(nodes: list[Node]) -> None:
    nodes.sort(key=lambda n: n.inclusive, reverse=True)
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
    whole = sum(r.inclusive for r in roots)
    # TTY: box-drawing branches; plain: ASCII, so logs and pipes stay readable anywhere
    tee, last, bar, space = ("├─ ", "└─ ", "│  ", "   ") if boxed else ("|- ", "`- ", "|  ", "   ")
    rows: list[list[str]] = []

    def walk(node: Node, prefix: str, branch: str) -> None:
        where = f"  {terminal.location(node.file, node.line)}" if node.file else ""
        rows.append(
            [
                format_bytes(node.inclusive),
                format_bytes(node.self_bytes),
                f"{node.inclusive / whole:.1%}" if whole else "-",
                f"{prefix}{branch}{node.function}{where}",
            ]
        )
        child_prefix = prefix + ("" if not branch else space if branch == last else bar)
        for i, child in enumerate(node.children):
            walk(child, child_prefix, last if i == len(node.children) - 1 else tee)

    for root in roots:
        walk(root, "", "")
    return terminal.table(
        ["inclusive", "self", "share", "call tree (caller → callee)"],
        rows,
        right=[True, True, True, False],
        clip=[False, False, False, True],
        boxed=boxed,
        width=width,
        title=f"Call tree of the {stacks} biggest stacks by {metric}",
    )
