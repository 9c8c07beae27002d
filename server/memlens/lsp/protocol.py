"""The custom part of the protocol, declared once (the extension mirrors it in protocol.ts).

Lines are 0-based in the protocol (as in LSP) and 1-based in labels and file:line texts.

Commands (`workspace/executeCommand`, one object argument):
  memlens.profile     {uri, args?, cwd?, env?} -> ProfileResult
                      Runs the script under `memlens run`. A second request while one runs
                      cancels the first (its result says cancelled: true): the newest wins.
  memlens.loadCapture {path}        -> {peakBytes, peakText, capturePath}
  memlens.clear       {}            -> null
  memlens.showStack   {uri, line}   -> {stacks: [{peakBytes, label, frames: [Frame]}]}
Requests:
  memlens/summary     {}            -> the summary of memlens.reports.summary.build, or null
  memlens/hotspots    {limit?}      -> {lines: [Hotspot], leaks: [Hotspot]}
  memlens/flamegraph  {metric?, nonce?, cspSource?} -> {html}
  memlens/fileUsage   {uri}         -> {lines: [{line, peakBytes, totalBytes, share, stale}]}
Notification (server -> client):
  memlens/didUpdate   {final, summary}  after every publish (a live checkpoint or the end)

A command that fails (script missing, not saved, syntax error, bad interpreter, unreadable
capture, bad arguments) shows a window/showMessage Error and returns null; the annotations shown
before stay.

Frame = {uri, line, function, file}; Hotspot = {uri, line, file, function, peakBytes, totalBytes,
count, leakBytes, share, label, stack: [Frame]}.
"""

from __future__ import annotations

from typing import Any

import attrs

PROFILE = "memlens.profile"
LOAD_CAPTURE = "memlens.loadCapture"
CLEAR = "memlens.clear"
SHOW_STACK = "memlens.showStack"

SUMMARY = "memlens/summary"
HOTSPOTS = "memlens/hotspots"
FLAMEGRAPH = "memlens/flamegraph"
FILE_USAGE = "memlens/fileUsage"
DID_UPDATE = "memlens/didUpdate"

# Client-side commands the code lenses point at (the extension implements them).
OPEN_FLAME_GRAPH = "memlens.openFlameGraph"
SHOW_PEAK_STACK = "memlens.showPeakStack"


@attrs.define
class ProfileParams:
    uri: str
    args: list[str] | None = None
    cwd: str | None = None
    env: dict[str, str] | None = None


@attrs.define
class LoadCaptureParams:
    path: str


@attrs.define
class ShowStackParams:
    uri: str
    line: int


@attrs.define
class HotspotsParams:
    limit: int = 50


@attrs.define
class FlameGraphParams:
    metric: str = "peak_bytes"
    nonce: str | None = None
    cspSource: str | None = None  # noqa: N815 (the wire name)


@attrs.define
class FileUsageParams:
    uri: str


class ParamsError(ValueError):
    """The client sent arguments that do not fit the method."""


def parse(kind: type[Any], raw: Any) -> Any:
    """Typed params from what the client sent (a dict, or None for no arguments)."""
    import cattrs

    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ParamsError(f"expected an object, got {type(raw).__name__}")
    try:
        return cattrs.structure(raw, kind)
    except Exception as error:  # cattrs raises a group of field errors
        names = ", ".join(a.name for a in attrs.fields(kind))
        raise ParamsError(f"bad arguments ({names}): {error}") from None
