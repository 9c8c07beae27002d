"""The run at a glance: peak (how much, when), totals, duration, exit code, and the top lines at
the high-watermark with the biggest stack of each.

`build(profile)` is JSON-able and shared with the language server (`memlens/summary`):

    {
      "complete": bool,             false for a checkpoint (run still going or killed)
      "argv": [str],
      "exit_code": int | null,
      "duration_s": float,
      "peak_bytes": int, "peak_ns": int, "peak_s": float,   when: from the start of tracking
      "alloc_bytes": int, "alloc_count": int,
      "leak_bytes": int, "rss_peak": int,
      "top_lines": [                 biggest self peak first (where the memory was allocated)
        {"file", "line", "function",
         "peak_bytes", "peak_count",            self: allocated by this line itself
         "inclusive_peak_bytes",                with callees
         "alloc_bytes", "alloc_count",          self, over the whole run
         "share": float,                        peak_bytes / run peak, 0..1
         "stack": [{"file", "line", "function"}] the biggest stack at peak, caller -> callee
        }]
    }
"""

from __future__ import annotations

from typing import Any

from memlens.model import Frame, Profile
from memlens.reports import terminal
from memlens.units import format_bytes

TOP_LINES = 10
STACK_FRAMES_SHOWN = 8  # innermost frames of each stack in the text (JSON has them all)


def frame_dict(frame: Frame) -> dict[str, Any]:
    return {"file": frame.file, "line": frame.line, "function": frame.function}


def build(profile: Profile, top: int = TOP_LINES) -> dict[str, Any]:
    totals = profile.totals
    lines = profile.lines
    top_lines = []
    for stats in lines.top("peak_bytes", top, self_only=True):
        stacks = lines.stacks_through(stats.file, stats.line, "peak_bytes", 1, self_only=True)
        top_lines.append(
            {
                "file": stats.file,
                "line": stats.line,
                "function": stats.function,
                "peak_bytes": stats.self.peak_bytes,
                "peak_count": stats.self.peak_count,
                "inclusive_peak_bytes": stats.inclusive.peak_bytes,
                "alloc_bytes": stats.self.alloc_bytes,
                "alloc_count": stats.self.alloc_count,
                "share": stats.self.peak_bytes / totals.peak_bytes if totals.peak_bytes else 0.0,
                "stack": [frame_dict(f) for f in stacks[0].frames] if stacks else [],
            }
        )
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
        "rss_peak": totals.rss_peak,
        "top_lines": top_lines,
    }


def render(profile: Profile, *, boxed: bool = False, top: int = TOP_LINES) -> str:
    """The summary as terminal text."""
    data = build(profile, top)
    exit_code = data["exit_code"]
    head = [
        ("Command", " ".join(data["argv"]) or "?"),
        ("Peak memory", f"{format_bytes(data['peak_bytes'])} at {data['peak_s']:.2f} s"),
        (
            "Total allocated",
            f"{format_bytes(data['alloc_bytes'])} in {data['alloc_count']:,} allocations",
        ),
        ("Leaked at exit", format_bytes(data["leak_bytes"])),
        ("Peak RSS", format_bytes(data["rss_peak"])),
        ("Duration", f"{data['duration_s']:.2f} s"),
        ("Exit code", "unknown" if exit_code is None else str(exit_code)),
    ]
    out = [terminal.key_values(head)]
    if not data["complete"]:
        out.append("(partial capture: the run was still going or was killed)")
    if not data["top_lines"]:
        out.append("\nNo allocations live at the peak.")
        return "\n".join(out)
    rows = [
        [
            str(i),
            format_bytes(entry["peak_bytes"]),
            f"{entry['share']:.1%}",
            f"{entry['file']}:{entry['line']}",
            entry["function"],
        ]
        for i, entry in enumerate(data["top_lines"], 1)
    ]
    out.append("")
    out.append(
        terminal.table(
            ["#", "at peak", "share", "location", "function"],
            rows,
            right=[True, True, True, False, False],
            boxed=boxed,
            title=f"Top {len(rows)} lines at peak (memory they allocated, live at the peak)",
        )
    )
    out.append("")
    out.append("Biggest stack at peak of each (caller → callee):")
    for i, entry in enumerate(data["top_lines"], 1):
        out.append(f"  #{i} {entry['file']}:{entry['line']}")
        stack = entry["stack"]
        if len(stack) > STACK_FRAMES_SHOWN:
            hidden = len(stack) - STACK_FRAMES_SHOWN
            out.append(f"      ... {hidden} caller{'s' if hidden != 1 else ''} above")
        for frame in stack[-STACK_FRAMES_SHOWN:]:
            out.append(f"      {frame['function']}  {frame['file']}:{frame['line']}")
    return "\n".join(out)
