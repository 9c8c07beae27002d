"""The flame graph: one self-contained HTML page (inline JS and CSS written here, no network, works
from file:// and inside a VS Code webview) with an icicle graph of the stacks and a timeline of
heap and RSS above it.

The page gets the stack trie, already pruned: children below `THRESHOLD` of the whole are merged
into one "(n small frames)" node per parent, so 100,000 stacks still make a page of a few hundred
kilobytes that draws at once. The page rebuilds its tree from that trie for the inverted view and
for hiding import-system or library frames.

Embedded data (`<script type="application/json" id="memlens-data">`):

    {"metric", "count_metric", "title", "total", "total_count", "threshold", "merged_nodes",
     "frames": {"function": [..], "file": [..], "line": [..], "kind": [..], "source": [..]},
        kind: user | library | import | small (merged frames) | none (no Python frame)
        source: the line's text, read from the file at report time ("" when unreadable)
     "nodes": {"parent": [..], "frame": [..], "value": [..], "count": [..]},   self value per node
     "timeline": {"t_ms", "heap", "rss"}, "peak_ms", "peak_bytes", "inverted",
     "run": {argv, pid, python_version, platform, memlens_version, start_ns, end_ns,
             python_allocators, exit_code, complete, duration_s,
             alloc_count, alloc_bytes, peak_bytes, peak_s, leak_bytes, rss_peak}}

Names from the profiled program are untrusted: the JSON is escaped so that no `<`, `>`, `&` or
line separator appears raw inside the script element, and the page only ever sets textContent.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import re
from importlib import resources
from typing import Any

import numpy as np

from memlens import measures, origins
from memlens.model import Profile
from memlens.reports import sizes, sources
from memlens.reports.json_report import capture_fields, totals_fields

THRESHOLD = 0.001  # frames under 0.1% of the whole are merged
MAX_TIMELINE_POINTS = 2000
NO_PYTHON_FRAME = "(no Python frame)"


class _Tables:
    """The page's frame and node tables, built up one node at a time."""

    def __init__(self) -> None:
        self.frames: dict[str, list[Any]] = {
            "function": [],
            "file": [],
            "line": [],
            "kind": [],
            "source": [],
        }
        self.nodes: dict[str, list[int]] = {"parent": [], "frame": [], "value": [], "count": []}
        self._texts = sources.LineTexts()

    def frame(self, function: str, file: str, line: int, kind: str) -> int:
        self.frames["function"].append(function)
        self.frames["file"].append(file)
        self.frames["line"].append(line)
        self.frames["kind"].append(kind)
        shown = self._texts.text(file, line) if kind in ("user", "library") else ""
        self.frames["source"].append(shown)
        return len(self.frames["line"]) - 1

    def node(self, parent: int, frame: int, value: int, count: int) -> None:
        for key, item in zip(self.nodes, (parent, frame, value, count), strict=True):
            self.nodes[key].append(item)


def data(profile: Profile, metric: str = "peak_bytes", *, inverted: bool = False) -> dict[str, Any]:
    """The page's JSON: the stack trie for `metric` (a measure's bytes, measures.py), with small
    frames merged."""
    measure = measures.of_metric(metric)
    parent = profile.stack_parent
    self_value, total_value = profile.node_totals(metric)
    self_count, total_count = profile.node_totals(measure.count)
    no_frame = profile.stats.values[profile.stats.stack < 0]
    orphan_value = int(measure.bytes_of(no_frame).sum())
    orphan_count = int(measure.count_of(no_frame).sum())
    whole = int(total_value[parent < 0].sum()) + orphan_value
    whole_count = int(total_count[parent < 0].sum()) + orphan_count
    threshold = max(1, int(np.ceil(whole * THRESHOLD)))

    # Kept: big enough. Inclusive values only grow towards the root, so kept nodes form a trie.
    kept = np.nonzero(total_value >= threshold)[0]
    new_index = np.full(len(parent), -1, dtype=np.int64)
    new_index[kept] = np.arange(len(kept))
    tables = _Tables()
    _add_kept(tables, profile, kept, new_index, self_value, self_count)
    small = (total_value < threshold) & (total_value > 0)
    merged_nodes = _add_merged(tables, parent, small, new_index, total_value, total_count)
    if orphan_value or orphan_count:
        no_frame_node = tables.frame(NO_PYTHON_FRAME, "", 0, "none")
        tables.node(-1, no_frame_node, orphan_value, orphan_count)
    return {
        "metric": metric,
        "count_metric": measure.count,
        "title": measure.title,
        "argv": list(profile.meta.argv),
        "complete": profile.complete,
        "total": whole,
        "total_count": whole_count,
        "threshold": threshold,
        "threshold_share": THRESHOLD,
        "merged_nodes": merged_nodes,
        "frames": tables.frames,
        "nodes": tables.nodes,
        "timeline": _timeline(profile),
        "peak_ms": profile.totals.peak_ns / 1e6,
        "peak_bytes": profile.totals.peak_bytes,
        "inverted": inverted,
        "run": _run(profile),
    }


def _add_kept(
    tables: _Tables,
    profile: Profile,
    kept: np.ndarray,
    new_index: np.ndarray,
    self_value: np.ndarray,
    self_count: np.ndarray,
) -> None:
    """The kept trie nodes, each with its self value, its frame added once."""
    frame_ids: dict[int, int] = {}
    kinds: dict[str, str] = {}
    for node in kept.tolist():
        frame_index = int(profile.stack_frame[node])
        if frame_index not in frame_ids:
            frame = profile.frames[frame_index]
            if frame.file not in kinds:
                kinds[frame.file] = origins.kind(frame.file)
            frame_ids[frame_index] = tables.frame(
                frame.function, frame.file, frame.line, kinds[frame.file]
            )
        up = int(profile.stack_parent[node])
        tables.node(
            int(new_index[up]) if up >= 0 else -1,
            frame_ids[frame_index],
            int(self_value[node]),
            int(self_count[node]),
        )


def _add_merged(
    tables: _Tables,
    parent: np.ndarray,
    small: np.ndarray,
    new_index: np.ndarray,
    total_value: np.ndarray,
    total_count: np.ndarray,
) -> int:
    """What was cut, per kept parent (-1: the root): one "(n small frames)" node each. Returns
    how many trie nodes were merged."""
    dropped = np.nonzero(small)[0]
    if not len(dropped):
        return 0
    dropped_parent = parent[dropped]
    # only the topmost dropped nodes carry their subtree; their parent is kept or -1
    top = (dropped_parent < 0) | (new_index[np.maximum(dropped_parent, 0)] >= 0)
    top_nodes = dropped[top]
    keys = np.where(parent[top_nodes] >= 0, new_index[np.maximum(parent[top_nodes], 0)], -1)
    for key in np.unique(keys).tolist():
        members = top_nodes[keys == key]
        n = len(members)
        frame = tables.frame(f"({n} small frame{'s' if n != 1 else ''})", "", 0, "small")
        tables.node(
            int(key), frame, int(total_value[members].sum()), int(total_count[members].sum())
        )
    return int(len(dropped))


def _run(profile: Profile) -> dict[str, Any]:
    """The stats panel: what ran, when, how it was tracked, and the totals."""
    meta = profile.meta
    return {
        **capture_fields(profile),
        **totals_fields(profile),
        "platform": meta.platform,
        "memlens_version": meta.memlens_version,
        "start_ns": meta.start_ns,
        "end_ns": meta.end_ns,
        "allocators": sizes.allocators(profile),
        "size_histogram": [{**b, "label": sizes.bucket_label(b)} for b in sizes.histogram(profile)],
        "size_histogram_estimated": sizes.estimated(profile),
    }


def _timeline(profile: Profile) -> dict[str, list[int]]:
    """At most MAX_TIMELINE_POINTS points; each keeps the highest heap and RSS of its bucket, so
    decimation never hides the peak."""
    t_ms, heap, rss = profile.timeline.t_ms, profile.timeline.heap, profile.timeline.rss
    if len(t_ms) > MAX_TIMELINE_POINTS:
        edges = np.linspace(0, len(t_ms), MAX_TIMELINE_POINTS + 1).astype(np.int64)[:-1]
        t_ms = t_ms[edges]
        heap = np.maximum.reduceat(heap, edges)
        rss = np.maximum.reduceat(rss, edges)
    return {"t_ms": t_ms.tolist(), "heap": heap.tolist(), "rss": rss.tolist()}


def embed_json(value: Any) -> str:
    """JSON that is safe inside a <script> element: no `<`, `>`, `&`, U+2028 or U+2029 raw."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    for raw, escaped in (
        ("<", "\\u003c"),
        (">", "\\u003e"),
        ("&", "\\u0026"),
        ("\u2028", "\\u2028"),
        ("\u2029", "\\u2029"),
    ):
        text = text.replace(raw, escaped)
    return text


def _asset(name: str) -> str:
    return (resources.files("memlens.reports") / "assets" / name).read_text(encoding="utf-8")


def _sha256(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


# The page's fixed markup; the script fills it in (names only ever through textContent).
_PAGE_BODY = (
    '<header id="header"><h1 id="heading"></h1><p id="subtitle"></p></header>\n'
    '<details id="run-stats"><summary>Run statistics</summary>'
    '<dl id="run-stats-list"></dl>'
    '<table id="run-allocators" class="run-table"></table>'
    '<table id="run-sizes" class="run-table"></table></details>\n'
    '<section id="timeline-section">'
    '<svg id="timeline" role="img" aria-label="heap and RSS over time"></svg>'
    '<button id="enlarge" type="button" title="a larger memory graph, with zoom">'
    "enlarge</button></section>\n"
    '<dialog id="memory-dialog" aria-label="memory over time">'
    '<div class="dialog-bar"><strong>Memory over time</strong> <span id="memory-range"></span>'
    '<span class="hint">drag across the graph or scroll to zoom</span>'
    '<button id="memory-reset" type="button">reset zoom</button>'
    '<button id="memory-close" type="button">close</button></div>'
    '<svg id="timeline-large" role="img" aria-label="heap and RSS over time, large"></svg>'
    "</dialog>\n"
    '<nav id="controls">'
    '<input id="search" type="search" placeholder="Search functions and files"'
    ' aria-label="search">'
    '<label><input id="inverted" type="checkbox"> inverted</label>'
    '<label><input id="flames" type="checkbox"> flames (root at the bottom)</label>'
    '<label><input id="hide-import" type="checkbox"> hide import system frames</label>'
    '<label><input id="only-mine" type="checkbox"> only my code</label>'
    '<button id="reset-zoom" type="button">reset zoom</button>'
    '<span class="legend">colors:<span class="user">your code</span>'
    '<span class="library">libraries</span><span class="import">import system</span></span>'
    '<span id="match"></span></nav>\n'
    '<p id="merged-note"></p>\n'
    '<main id="flame" role="tree"></main>\n'
    '<div id="tooltip" role="tooltip" hidden></div>\n'
)


def render(
    profile: Profile,
    metric: str = "peak_bytes",
    inverted: bool = False,
    nonce: str | None = None,
    csp_source: str | None = None,
) -> str:
    """The whole page. With `nonce` (a VS Code webview), every inline script and style carries it
    and the CSP allows `csp_source` (the webview's cspSource); without, the CSP allows exactly the
    inline script and style of this page, by hash."""
    script = _asset("flamegraph.js")
    style = _asset("flamegraph.css")
    payload = embed_json(data(profile, metric, inverted=inverted))
    if nonce is not None:
        if not re.fullmatch(r"[A-Za-z0-9+/=_-]+", nonce):
            raise ValueError("nonce must be base64 or alphanumeric text")
        source = f" {csp_source}" if csp_source else ""
        csp = (
            f"default-src 'none'; script-src 'nonce-{nonce}'; "
            f"style-src 'nonce-{nonce}'{source}; img-src{source} data:"
        )
        attr = f' nonce="{nonce}"'
    else:
        csp = (
            f"default-src 'none'; script-src {_sha256(script)}; "
            f"style-src {_sha256(style)}; img-src data:"
        )
        attr = ""
    title = html.escape(f"memlens flame graph: {' '.join(profile.meta.argv) or 'capture'}")
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{html.escape(csp)}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{title}</title>\n"
        f"<style{attr}>{style}</style>\n"
        "</head>\n<body>\n"
        f"{_PAGE_BODY}"
        f'<script type="application/json" id="memlens-data"{attr}>{payload}</script>\n'
        f"<script{attr}>{script}</script>\n"
        "</body>\n</html>\n"
    )
