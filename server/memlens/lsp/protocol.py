"""The custom part of the protocol, declared once per side: here, and in the extension's
protocol.ts (tests/lsp/test_protocol_ts.py fails when the two disagree).

Lines are 0-based in the protocol (as in LSP) and 1-based in labels and file:line texts. Field
names are snake_case here and camelCase on the wire (`converter` renames them both ways), except
the summary, which is memlens.reports.summary's JSON as built. Bytes are formatted here, once:
every `...Text` field and label is the server's text, and the extension shows it as is.

Commands go through `workspace/executeCommand` with one object argument; requests are custom
methods. `METHODS` lists each with its parameters and result. memlens.profile: a second request
while one runs cancels the first (its result says cancelled: true): the newest wins. A file
outside the workspace folders (after `..` and symlinks) runs only with confirmed: true (the user
said yes); without it the answer is a RequestFailed (-32803) error with data
{needsConfirmation: true, path}.

A command that fails (script missing, not saved, syntax error, bad interpreter, unreadable
capture, a launch setting that cannot work) shows a window/showMessage Error and returns null;
the annotations shown before stay. Arguments that do not fit the parameters' types (checked
strictly: nothing is coerced, unknown fields are refused, one object argument only) get an
InvalidParams (-32602) error response naming the field, and no popup.
"""

from __future__ import annotations

import typing
from typing import Any, Literal

import attrs
import cattrs
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override

# --- parameters ---------------------------------------------------------------------------------


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
class AttachParams:
    pid: int
    checkpoint_interval: float = 1.0  # seconds between checkpoints


@attrs.define
class ProfileTestParams:
    uri: str
    test: str  # the node id after "FILE::": "test_x" or "TestY::test_x"
    confirmed: bool = False  # the user agreed to run a file outside the workspace folders


@attrs.define
class NotebookCell:
    uri: str  # the cell document's uri (vscode-notebook-cell:...)
    text: str


@attrs.define
class ProfileNotebookParams:
    notebook_uri: str
    cells: list[NotebookCell]  # the code cells, in order
    confirmed: bool = False  # the user agreed to run a notebook outside the workspace folders


@attrs.define
class SnapshotParams:
    label: str | None = None  # default: "editor-N", N counting this server's requests


@attrs.define
class SnapshotResult:
    label: str
    t_ms: int  # since tracking started
    count: int  # live Python objects found
    bytes: int
    text: str  # "snapshot 'editor-1' at 1.37 s: 1,002 objects, 1.0 MiB"


@attrs.define
class HotspotsParams:
    limit: int = 50


@attrs.define
class FlameGraphParams:
    metric: str = "peak_bytes"
    nonce: str | None = None
    csp_source: str | None = None


@attrs.define
class FileUsageParams:
    uri: str


@attrs.define
class NoParams:
    """memlens.clear, memlens.detach and memlens/summary: an empty object, or nothing."""


# --- results ------------------------------------------------------------------------------------


@attrs.define
class Frame:
    uri: str | None  # None: not a file (<frozen ...>, <string>)
    line: int
    function: str
    file: str


@attrs.define
class ProfileResult:
    exit_code: int | None  # None: cancelled
    duration_s: float
    cancelled: bool
    peak_bytes: int | None = None  # None: nothing to show (cancelled)
    peak_text: str | None = None
    capture_path: str | None = None


@attrs.define
class ProfileTestResult:
    """memlens.profileTest's answer: the test's highest-peak case, now shown."""

    nodeid: str
    outcome: str  # passed, failed or skipped
    passed: bool  # every case passed
    peak_bytes: int
    peak_text: str
    verdict: str  # `peak 3.2 MiB / limit 4.0 MiB ✓` with a limit marker, else `peak 3.2 MiB`
    cases: int  # how many cases ran (a parametrized test runs all)
    exit_code: int
    capture_path: str


@attrs.define
class CaptureResult:
    """memlens.loadCapture's answer: the capture now shown."""

    peak_bytes: int
    peak_text: str
    capture_path: str


@attrs.define
class AttachResult:
    pid: int
    python: str
    capture_path: str  # where the final capture will be


@attrs.define
class DetachResult:
    peak_bytes: int
    peak_text: str
    capture_path: str
    how: Literal["detached", "exited", "vanished"]


@attrs.define
class PeakStack:
    peak_bytes: int
    label: str
    frames: list[Frame]


@attrs.define
class ShowStackResult:
    stacks: list[PeakStack]


@attrs.define
class Hotspot:
    uri: str | None
    line: int
    file: str
    function: str
    peak_bytes: int
    peak_text: str
    total_bytes: int
    total_text: str
    count: int
    # lost at exit: live and reached from no root (all of it live at exit when the capture
    # cannot tell); memory a module global still references is no leak
    leak_bytes: int
    leak_text: str
    share: float  # of the run's peak, 0..1
    label: str
    stack: list[Frame]


@attrs.define
class HotspotsResult:
    lines: list[Hotspot]
    leaks: list[Hotspot]  # by memory lost at exit (label "charged: lost ...")


@attrs.define
class FlameGraphResult:
    html: str


@attrs.define
class LineUsage:
    line: int
    peak_bytes: int
    total_bytes: int
    share: float
    stale: bool  # the line was edited: its numbers are not to be trusted


@attrs.define
class FileUsageResult:
    lines: list[LineUsage]


Summary = dict[str, Any]  # memlens.reports.summary.build(profile), snake_case as built


@attrs.define
class DidUpdateParams:
    final: bool  # false: a live checkpoint
    summary: Summary | None
    peak_text: str | None = None
    leak_text: str | None = None


# --- the methods --------------------------------------------------------------------------------


@attrs.frozen
class Method:
    name: str
    params: type[Any]
    result: Any  # a type expression: what the answer is (null: failed, already shown)
    kind: Literal["command", "request", "notification"]


PROFILE = Method("memlens.profile", ProfileParams, ProfileResult | None, "command")
LOAD_CAPTURE = Method("memlens.loadCapture", LoadCaptureParams, CaptureResult | None, "command")
CLEAR = Method("memlens.clear", NoParams, None, "command")
SHOW_STACK = Method("memlens.showStack", ShowStackParams, ShowStackResult, "command")
PROFILE_TEST = Method("memlens.profileTest", ProfileTestParams, ProfileTestResult | None, "command")
PROFILE_NOTEBOOK = Method(
    "memlens.profileNotebook", ProfileNotebookParams, ProfileResult | None, "command"
)
ATTACH = Method("memlens.attach", AttachParams, AttachResult | None, "command")
DETACH = Method("memlens.detach", NoParams, DetachResult | None, "command")
SNAPSHOT = Method("memlens.snapshot", SnapshotParams, SnapshotResult | None, "command")
SUMMARY = Method("memlens/summary", NoParams, Summary | None, "request")
HOTSPOTS = Method("memlens/hotspots", HotspotsParams, HotspotsResult, "request")
FLAMEGRAPH = Method("memlens/flamegraph", FlameGraphParams, FlameGraphResult | None, "request")
FILE_USAGE = Method("memlens/fileUsage", FileUsageParams, FileUsageResult, "request")
DID_UPDATE = Method("memlens/didUpdate", DidUpdateParams, None, "notification")
METHODS = (PROFILE, LOAD_CAPTURE, CLEAR, SHOW_STACK, PROFILE_TEST, ATTACH, DETACH, SNAPSHOT,
           SUMMARY, HOTSPOTS, FLAMEGRAPH, FILE_USAGE, DID_UPDATE,
           PROFILE_NOTEBOOK)  # fmt: skip

# Client-side commands the code lenses point at (the extension implements them): the run's lens
# opens the flame graph {uri}; a function's lens shows its peak stacks {uri, line}; a test's
# lens profiles it {uri, test}.
OPEN_FLAME_GRAPH = "memlens.openFlameGraph"
SHOW_PEAK_STACK = "memlens.showPeakStack"
PROFILE_THIS_TEST = "memlens.profileThisTest"


# --- the converter ------------------------------------------------------------------------------


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def wire_name(field: attrs.Attribute[Any]) -> str:
    """A field's name on the wire: camelCase, unless its metadata says otherwise."""
    return str(field.metadata.get("wire", camel(field.name)))


def _converter() -> cattrs.Converter:
    """Settings, parameters and results: snake_case fields, camelCase on the wire."""
    converter = cattrs.Converter(forbid_extra_keys=True)

    def renames(kind: type[Any]) -> dict[str, Any]:
        return {f.name: override(rename=wire_name(f)) for f in attrs.fields(kind)}

    converter.register_unstructure_hook_factory(
        attrs.has, lambda kind: make_dict_unstructure_fn(kind, converter, **renames(kind))
    )
    converter.register_structure_hook_factory(
        attrs.has,
        lambda kind: make_dict_structure_fn(
            kind, converter, _cattrs_forbid_extra_keys=True, **renames(kind)
        ),
    )
    return converter


converter = _converter()


def wire(value: Any) -> Any:
    """A result or notification as JSON-able values, with the wire's names."""
    return converter.unstructure(value)


class ParamsError(ValueError):
    """The client sent arguments that do not fit the method (answered with InvalidParams)."""


def kind_name(kind: Any) -> str:
    names = {str: "a string", int: "an integer", float: "a number", bool: "true or false"}
    if kind in names:
        return names[kind]
    if attrs.has(kind):
        return "an {" + ", ".join(wire_name(f) for f in attrs.fields(kind)) + "} object"
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin is list:
        return f"a list of {kind_name(args[0]).split(' ', 1)[1]}s"  # "a string" -> "strings"
    if origin is dict:
        return f"an object of {kind_name(args[1]).split(' ', 1)[1]}s"
    if type(None) in args:
        return " or ".join([kind_name(a) for a in args if a is not type(None)] + ["null"])
    return str(kind)


def fits(value: Any, kind: Any) -> bool:
    """Strictly: a string is not a list of characters, true is not 1, 1.5 is not 1."""
    if kind in (str, bool):
        return type(value) is kind
    if kind is int:
        return type(value) is int
    if kind is float:  # JSON has one number: 1 is a float too
        return type(value) in (int, float)
    if attrs.has(kind):  # a nested object (a notebook's cell): its fields, none unknown
        return type(value) is dict and _fields_problem(kind, value) is None
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin is list:
        return type(value) is list and all(fits(v, args[0]) for v in value)
    if origin is dict:
        return type(value) is dict and all(fits(v, args[1]) for v in value.values())
    return any(fits(value, a) if a is not type(None) else value is None for a in args)


def parse(kind: type[Any], raw: Any) -> Any:
    """Typed params from what the client sent (an object, or None for no arguments), checked
    against the fields' types; anything else is a ParamsError naming the field."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ParamsError(f"expected one object as the argument, got {_json_name(raw)}")
    problem = _fields_problem(kind, raw)
    if problem is not None:
        raise ParamsError(problem)
    return converter.structure(raw, kind)


def _fields_problem(kind: type[Any], raw: dict[str, Any]) -> str | None:
    """What is wrong with an object's fields (unknown, missing, of another type), or None."""
    fields = {wire_name(f): f for f in attrs.fields(kind)}
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        return f"unknown field {unknown[0]!r} (known: {', '.join(fields)})"
    hints = typing.get_type_hints(kind)
    for name, field in fields.items():
        if name not in raw:
            if field.default is attrs.NOTHING:
                return f"{name!r} is missing"
            continue
        if not fits(raw[name], hints[field.name]):
            return f"{name!r} must be {kind_name(hints[field.name])}, not {_json_name(raw[name])}"
    return None


def _json_name(value: Any) -> str:
    """The JSON kind of a value, as a user would say it."""
    if value is None:
        return "null"
    for kind, name in ((bool, "true/false"), (int, "a number"), (float, "a number"),
                       (str, "a string"), (list, "a list"), (dict, "an object")):  # fmt: skip
        if isinstance(value, kind):
            return name
    return type(value).__name__
