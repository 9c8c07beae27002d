"""The run at a glance: peak (how much, when), totals, duration, exit code, and the top lines at
the high-watermark with the biggest stack of each.

Memory allocated while importing (importlib's frames and the imported module's top-level code) is
charged to the line that imported (`import httpx`), or to one "(imports)" entry when the import
system was entered with no line of Python above it; `show_imports` lists those lines instead.

`build(profile)` is JSON-able and shared with the language server (`memlens/summary`):

    {
      "complete": bool,             false for a checkpoint (run still going or killed)
      "argv": [str],
      "exit_code": int | null,
      "duration_s": float,
      "peak_bytes": int, "peak_ns": int, "peak_s": float,   when: from the start of tracking
      "alloc_bytes": int, "alloc_count": int,
      "leak_bytes": int, "rss_peak": int,   leak: live at exit (allocated, never freed before
                                            tracking stopped) = referenced + lost:
      "referenced_bytes": int | null,       live at exit and still reached from a root (module
                                            globals, class attributes, running frames, C
                                            globals): what a program keeps to its end
      "lost_bytes": int | null,             live at exit and reached from no root (dropped C
                                            buffers, uncollected cycles); both null when the
                                            capture has no exit snapshot to tell them apart
      "referenced_complete": bool | null,   false: the marking ran out of time (referenced is
                                            then a floor, lost a ceiling)
      "imports": {"peak_bytes": int, "alloc_bytes": int,   allocated inside the import system
                  "folded": bool},                       true: charged to the importing lines
      "top_lines": [                 biggest self peak first (where the memory was allocated)
        {"file", "line", "function",            "(imports)" with file "" and line 0: see above
         "peak_bytes", "peak_count",            self: allocated by this line itself
         "import_peak_bytes",                   of which by the imports this line ran
         "inclusive_peak_bytes",                with callees
         "alloc_bytes", "alloc_count",          self, over the whole run
         "share": float,                        peak_bytes / run peak, 0..1
         "stack": [{"file", "line", "function"}] the biggest stack at peak, caller -> callee
        }]
    }
"""

from __future__ import annotations

from typing import Any

import numpy as np

from memlens import measures
from memlens.model import INCLUSIVE, Frame, Profile
from memlens.reports import imports, terminal
from memlens.units import format_bytes

TOP_LINES = 10
STACK_FRAMES_SHOWN = 8  # innermost frames of each stack in the text (JSON has them all)
IMPORTS = "(imports)"
# What the memory live at exit is, said where the number is shown: a module-level `data = [...]`
# stays allocated until the interpreter ends, after the capture is written; that is no leak.
WHERE_LIVE = (
    "`memlens table CAP --lost` lists where lost memory was allocated, `memlens types CAP`\n"
    "what holds the live objects at exit."
)
NOT_SPLIT = (
    "Live at exit = never freed before tracking stopped, referenced or lost: this capture\n"
    "has no exit snapshot to tell them apart (`memlens table CAP --leaks` lists where)."
)


def frame_dict(frame: Frame) -> dict[str, Any]:
    return {"file": frame.file, "line": frame.line, "function": frame.function}


def _top_lines(profile: Profile, top: int, importer: np.ndarray | None) -> list[dict[str, Any]]:
    """The `top` lines by peak bytes charged to them; `importer` (imports.importers) charges
    what ran inside an import to the importing line, None charges every node to itself."""
    node_key, key_frame = profile.line_keys
    itself = np.arange(len(node_key), dtype=np.int64)
    charged = (
        itself
        if importer is None
        else np.where(importer == imports.NOT_IMPORTING, itself, importer)
    )
    imports_key = len(key_frame)  # imports with no line above them
    charge_key = np.where(charged >= 0, node_key[np.maximum(charged, 0)], imports_key)
    rows = profile.stats.stack >= 0
    row_node = profile.stats.stack[rows]
    row_key = charge_key[row_node]

    def per_key(metric: str, where: np.ndarray | None = None) -> np.ndarray:
        column = profile.stats.values[rows, measures.COLUMNS.index(metric)]
        weights = column if where is None else np.where(where, column, 0)
        return np.bincount(row_key, weights=weights, minlength=imports_key + 1).astype(np.int64)

    line_peak = per_key("peak_bytes")
    import_peak = per_key("peak_bytes", (charged != itself)[row_node])
    sums = {m: per_key(m) for m in ("peak_count", "alloc_bytes", "alloc_count")}
    node_peak = np.bincount(
        row_node,
        weights=profile.stats.values[rows, measures.COLUMNS.index("peak_bytes")],
        minlength=len(node_key),
    )
    ranked = [k for k in np.argsort(-line_peak, kind="stable")[:top].tolist() if line_peak[k] > 0]
    inclusive = profile.line_totals(INCLUSIVE, ("peak_bytes",))[:, 0]
    whole = profile.totals.peak_bytes
    out = []
    for k in ranked:
        members = np.nonzero((charge_key == k) & (node_peak > 0))[0]
        biggest = int(charged[members[np.argmax(node_peak[members])]])
        frame = key_frame[k] if k != imports_key else Frame(IMPORTS, "", 0, 0)
        out.append(
            {
                "file": frame.file,
                "line": frame.line,
                "function": frame.function,
                "peak_bytes": int(line_peak[k]),
                "peak_count": int(sums["peak_count"][k]),
                "import_peak_bytes": int(import_peak[k]),
                "inclusive_peak_bytes": int(inclusive[k])
                if k != imports_key
                else int(line_peak[k]),
                "alloc_bytes": int(sums["alloc_bytes"][k]),
                "alloc_count": int(sums["alloc_count"][k]),
                "share": int(line_peak[k]) / whole if whole else 0.0,
                "stack": [frame_dict(f) for f in profile.frames_of(biggest)],
            }
        )
    return out


def _live_at_exit(data: dict[str, Any]) -> str:
    """`106.5 KiB: 106.5 KiB still referenced, 0 B lost`."""
    live = format_bytes(data["leak_bytes"])
    if data["referenced_bytes"] is None:
        return f"{live} still allocated when tracking stopped"
    floor = "" if data["referenced_complete"] else " (at least: the marking ran out of time)"
    return (
        f"{live}: {format_bytes(data['referenced_bytes'])} still referenced{floor}, "
        f"{format_bytes(data['lost_bytes'])} lost"
    )


def build(profile: Profile, top: int = TOP_LINES, *, show_imports: bool = False) -> dict[str, Any]:
    totals = profile.totals
    importer = imports.importers(profile)
    rows = profile.stats.stack >= 0
    importing = (importer != imports.NOT_IMPORTING)[profile.stats.stack[rows]]
    values = profile.stats.values[rows]
    return {
        "complete": profile.complete,
        "argv": list(profile.meta.argv),
        "exit_code": profile.meta.exit_code,
        "duration_s": round(profile.meta.duration_s, 6),
        "peak_bytes": totals.peak_bytes,
        "peak_ns": totals.peak_ns,
        "peak_s": round(totals.peak_ns / 1e9, 6),
        "alloc_bytes": totals.alloc_bytes,
        "alloc_count": totals.alloc_count,
        "leak_bytes": totals.leak_bytes,
        **profile.exit_split(),
        "rss_peak": totals.rss_peak,
        "imports": {
            "peak_bytes": int(values[importing, measures.COLUMNS.index("peak_bytes")].sum()),
            "alloc_bytes": int(values[importing, measures.COLUMNS.index("alloc_bytes")].sum()),
            "folded": not show_imports,
        },
        "top_lines": _top_lines(profile, top, None if show_imports else importer),
    }


def render(
    profile: Profile,
    *,
    boxed: bool = False,
    top: int = TOP_LINES,
    show_imports: bool = False,
    width: int | None = None,
) -> str:
    """The summary as terminal text."""
    data = build(profile, top, show_imports=show_imports)
    exit_code = data["exit_code"]
    head = [
        ("Command", " ".join(data["argv"]) or "?"),
        ("Peak memory", f"{format_bytes(data['peak_bytes'])} at {data['peak_s']:.2f} s"),
        (
            "Total allocated",
            f"{format_bytes(data['alloc_bytes'])} in {data['alloc_count']:,} allocations",
        ),
        ("Live at exit", _live_at_exit(data)),
        ("Peak RSS", format_bytes(data["rss_peak"])),
        ("Duration", f"{data['duration_s']:.2f} s"),
        ("Exit code", "unknown" if exit_code is None else str(exit_code)),
    ]
    if data["imports"]["alloc_bytes"]:
        head.append(
            (
                "Imports",
                f"{format_bytes(data['imports']['peak_bytes'])} at peak, "
                f"{format_bytes(data['imports']['alloc_bytes'])} allocated",
            )
        )
    out = [terminal.key_values(head, width)]
    if data["leak_bytes"]:
        split = data["referenced_bytes"] is not None
        out.append(f"{measures.EXIT_TERMS}\n{WHERE_LIVE}" if split else NOT_SPLIT)
    if not data["complete"]:
        out.append("(partial capture: the run was still going or was killed)")
    if not data["top_lines"]:
        out.append("\nNo allocations live at the peak.")
        return "\n".join(out)
    out.append("")
    out.append(_top_table(data, boxed=boxed, width=width))
    if data["imports"]["folded"] and data["imports"]["peak_bytes"]:
        out.append(
            "Memory allocated by imports is charged to the line that imported\n"
            "(--show-imports lists the import system's own lines)."
        )
    out.append("")
    out.append("Biggest stack at peak of each (caller → callee):")
    for i, entry in enumerate(data["top_lines"], 1):
        out.append(terminal.clip(f"  #{i} {_where(entry)}", width))
        stack = entry["stack"]
        if len(stack) > STACK_FRAMES_SHOWN:
            hidden = len(stack) - STACK_FRAMES_SHOWN
            out.append(f"      ... {hidden} caller{'s' if hidden != 1 else ''} above")
        for frame in stack[-STACK_FRAMES_SHOWN:]:
            where = terminal.location(frame["file"], frame["line"])
            out.append(terminal.clip(f"      {frame['function']}  {where}", width))
    return "\n".join(out)


def _where(entry: dict[str, Any]) -> str:
    if not entry["file"]:
        return "(imports with no line of Python above them)"
    return terminal.location(entry["file"], entry["line"])


def _top_table(data: dict[str, Any], *, boxed: bool, width: int | None) -> str:
    rows = []
    for i, entry in enumerate(data["top_lines"], 1):
        function = entry["function"]
        if entry["import_peak_bytes"]:
            function += f" (imports: {format_bytes(entry['import_peak_bytes'])})"
        location = terminal.location(entry["file"], entry["line"]) if entry["file"] else ""
        rows.append(
            [str(i), format_bytes(entry["peak_bytes"]), f"{entry['share']:.1%}", location, function]
        )
    return terminal.table(
        ["#", "at peak", "share", "location", "function"],
        rows,
        right=[True, True, True, False, False],
        boxed=boxed,
        width=width,
        title=f"Top {len(rows)} lines at peak (self: memory they allocated, live at the peak)",
    )
