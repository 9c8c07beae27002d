"""The custom part of the protocol, declared once (the extension mirrors it in protocol.ts).

Lines are 0-based in the protocol (as in LSP) and 1-based in labels and file:line texts.

Commands (`workspace/executeCommand`, one object argument):
  memlens.profile     {uri, args?, cwd?, env?, confirmed?} -> ProfileResult
                      Runs the script under `memlens run`. A second request while one runs
                      cancels the first (its result says cancelled: true): the newest wins.
                      A file outside the workspace folders (after `..` and symlinks) runs only
                      with confirmed: true (the user said yes); without it the answer is a
                      RequestFailed (-32803) error with data {needsConfirmation: true, path}.
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
capture, a launch setting that cannot work) shows a window/showMessage Error and returns null;
the annotations shown before stay. Arguments that do not fit the schema below (checked strictly:
nothing is coerced, unknown fields are refused, one object argument only) get an InvalidParams
(-32602) error response naming the field, and no popup.

Frame = {uri, line, function, file}; Hotspot = {uri, line, file, function, peakBytes, totalBytes,
count, leakBytes, share, label, stack: [Frame]}.
"""

from __future__ import annotations

import typing
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
    confirmed: bool = False  # the user agreed to run a file outside the workspace folders


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


@attrs.define
class NoParams:
    """memlens.clear and memlens/summary: an empty object, or nothing."""


class ParamsError(ValueError):
    """The client sent arguments that do not fit the method (answered with InvalidParams)."""


def _kind_name(kind: Any) -> str:
    names = {str: "a string", int: "an integer", bool: "true or false"}
    if kind in names:
        return names[kind]
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin is list:
        return f"a list of {_kind_name(args[0])[2:]}s"
    if origin is dict:
        return f"an object of {_kind_name(args[1])[2:]}s"
    if type(None) in args:
        return " or ".join([_kind_name(a) for a in args if a is not type(None)] + ["null"])
    return str(kind)


def _fits(value: Any, kind: Any) -> bool:
    """Strictly: a string is not a list of characters, true is not 1, 1.5 is not 1."""
    if kind in (str, bool):
        return type(value) is kind
    if kind is int:
        return type(value) is int
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin is list:
        return type(value) is list and all(_fits(v, args[0]) for v in value)
    if origin is dict:
        return type(value) is dict and all(_fits(v, args[1]) for v in value.values())
    return any(_fits(value, a) if a is not type(None) else value is None for a in args)


def parse(kind: type[Any], raw: Any) -> Any:
    """Typed params from what the client sent (an object, or None for no arguments), checked
    against the fields' types; anything else is a ParamsError naming the field."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ParamsError(f"expected one object as the argument, got {_json_name(raw)}")
    fields = {f.name: f for f in attrs.fields(kind)}
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        raise ParamsError(f"unknown field {unknown[0]!r} (known: {', '.join(fields)})")
    hints = typing.get_type_hints(kind)
    for name, field in fields.items():
        if name not in raw:
            if field.default is attrs.NOTHING:
                raise ParamsError(f"{name!r} is missing")
            continue
        if not _fits(raw[name], hints[name]):
            raise ParamsError(
                f"{name!r} must be {_kind_name(hints[name])}, not {_json_name(raw[name])}"
            )
    return kind(**raw)


def _json_name(value: Any) -> str:
    """The JSON kind of a value, as a user would say it."""
    if value is None:
        return "null"
    for kind, name in ((bool, "true/false"), (int, "a number"), (float, "a number"),
                       (str, "a string"), (list, "a list"), (dict, "an object")):  # fmt: skip
        if isinstance(value, kind):
            return name
    return type(value).__name__
