"""The protocol is declared once per side: protocol.py (server) and protocol.ts (extension).
These tests fail when the two disagree on a method, a field, its type or whether it may be left
out, and when the settings' defaults and ranges differ from package.json's."""

from __future__ import annotations

import importlib.util
import json
import re
import types
import typing
from pathlib import Path
from typing import Any, Literal

import attrs
import pytest

from memlens.lsp import protocol, settings

ROOT = Path(__file__).parents[2]
PROTOCOL_TS = ROOT / "vscode-extension" / "src" / "protocol.ts"
PACKAGE_JSON = ROOT / "vscode-extension" / "package.json"


def ts_type(kind: Any) -> str:
    """How protocol.ts spells a Python type of protocol.py."""
    if kind is type(None) or kind is None:
        return "null"
    if kind == protocol.Summary:
        return "Summary"
    if attrs.has(kind):
        return kind.__name__
    simple = {int: "number", float: "number", str: "string", bool: "boolean"}
    if kind in simple:
        return simple[kind]
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin is list:
        return f"{ts_type(args[0])}[]"
    if origin is dict:
        return f"Record<{ts_type(args[0])}, {ts_type(args[1])}>"
    if origin is Literal:
        return " | ".join(f"'{a}'" for a in args)
    if origin in (typing.Union, types.UnionType):
        present = [ts_type(a) for a in args if a is not type(None)]
        return " | ".join(present + (["null"] if type(None) in args else []))
    raise AssertionError(f"no TypeScript spelling for {kind!r}")


def ts_interfaces(text: str) -> dict[str, dict[str, tuple[bool, str]]]:
    """interface name -> field -> (optional, type), from `export interface X { ... }` blocks."""
    found: dict[str, dict[str, tuple[bool, str]]] = {}
    for name, body in re.findall(r"export interface (\w+) \{\n(.*?)\n\}", text, re.S):
        fields = re.findall(r"^  (\w+)(\??): (.+);$", body, re.M)
        found[name] = {field: (optional == "?", kind) for field, optional, kind in fields}
    return found


def ts_methods(text: str) -> dict[str, tuple[str, str, list[str]]]:
    """method name -> (constant, declaration kind, type arguments)."""
    pattern = r"export const (\w+) = new (\w+)<(.+)>\('([^']+)'\);"
    return {
        method: (const, kind, [a.strip() for a in re.split(r",(?![^<]*>)", args)])
        for const, kind, args, method in re.findall(pattern, text)
    }


def python_fields(kind: type[Any], is_params: bool) -> dict[str, tuple[bool, str]]:
    """What protocol.ts must say of an attrs class: parameters with a default may be left out
    (null then need not be spelled); a result always has every field."""
    hints = typing.get_type_hints(kind)
    fields: dict[str, tuple[bool, str]] = {}
    for field in attrs.fields(kind):
        hint = hints[field.name]
        optional = is_params and field.default is not attrs.NOTHING
        if optional and type(None) in typing.get_args(hint):
            hint = typing.Union[tuple(a for a in typing.get_args(hint) if a is not type(None))]  # noqa: UP007
        fields[protocol.wire_name(field)] = (optional, ts_type(hint))
    return fields


def reachable(kind: Any) -> set[type[Any]]:
    """The attrs classes a type is made of."""
    if attrs.has(kind):
        found = {kind}
        for hint in typing.get_type_hints(kind).values():
            found |= reachable(hint)
        return found
    return set().union(*(reachable(a) for a in typing.get_args(kind)))


def test_every_method_is_declared_alike_on_both_sides() -> None:
    declared = ts_methods(PROTOCOL_TS.read_text())
    expected = {}
    for method in protocol.METHODS:
        params, result = ts_type(method.params), ts_type(method.result)
        if method.kind == "command":
            expected[method.name] = ("CommandType", [params, result])
        elif method.kind == "request":
            expected[method.name] = ("RequestType", [params, result, "void"])
        else:
            expected[method.name] = ("NotificationType", [params])
    assert {m: (k, a) for m, (_, k, a) in declared.items()} == expected


def test_no_extension_command_has_a_server_commands_name() -> None:
    # The client registers each server command with VS Code at start; an extension command of
    # the same name makes the server fail to start ("command ... already exists").
    contributed = {
        c["command"] for c in json.loads(PACKAGE_JSON.read_text())["contributes"]["commands"]
    }
    served = {m.name for m in protocol.METHODS if m.kind == "command"}
    assert served and contributed and not contributed & served


def test_every_parameter_and_result_has_the_same_fields() -> None:
    interfaces = ts_interfaces(PROTOCOL_TS.read_text())
    sent = [m for m in protocol.METHODS if m.kind != "notification"]
    params = {m.params for m in sent if m.params is not protocol.NoParams}
    # what the server sends always has every field: results, and notifications' params
    results = set().union(*(reachable(m.result) for m in sent), {protocol.DID_UPDATE.params})
    assert params & results == set()
    for kind in sorted(params | results, key=lambda k: k.__name__):
        assert interfaces.get(kind.__name__) == python_fields(kind, kind in params), kind


def test_the_summary_fields_the_extension_reads_are_built() -> None:
    spec = importlib.util.spec_from_file_location(
        "synthetic", ROOT / "tests" / "reports" / "synthetic.py"
    )
    assert spec is not None and spec.loader is not None
    synthetic = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(synthetic)
    from memlens.reports import summary

    built = summary.build(synthetic.example())
    declared = ts_interfaces(PROTOCOL_TS.read_text())["Summary"]
    assert set(declared) - set(built) == set()


def test_the_check_sees_a_drifted_field() -> None:
    drifted = PROTOCOL_TS.read_text().replace("  peakBytes: number | null;", "  peakBytes: number;")
    assert ts_interfaces(drifted)["ProfileResult"] != python_fields(protocol.ProfileResult, False)


# --- settings: defaults and ranges, once in settings.py, once in package.json -------------------


def package_settings() -> dict[str, dict[str, Any]]:
    properties = json.loads(PACKAGE_JSON.read_text())["contributes"]["configuration"]["properties"]
    return {key.removeprefix("memlens."): spec for key, spec in properties.items()}


def python_settings(kind: type[Any] = settings.Settings, prefix: str = "") -> dict[str, Any]:
    """Dotted wire name -> (JSON type, default, minimum, maximum), as package.json says them."""
    json_types = {int: "integer", float: "number", str: "string", bool: "boolean"}
    defaults = kind()
    found: dict[str, Any] = {}
    hints = typing.get_type_hints(kind)
    for field in attrs.fields(kind):
        name, hint = prefix + protocol.wire_name(field), hints[field.name]
        if attrs.has(hint):
            found |= python_settings(hint, name + ".")
            continue
        origin = typing.get_origin(hint)
        plain = str if type(None) in typing.get_args(hint) else origin or hint
        json_type = {list: "array", dict: "object"}.get(plain) or json_types[plain]
        default = getattr(defaults, field.name)
        if field.name in ("python", "cwd"):
            default = ""  # unset: package.json says "", the server picks (see settings.py)
        limits = (field.metadata.get("minimum"), field.metadata.get("maximum"))
        found[name] = (json_type, default, *limits)
    return found


def test_settings_defaults_and_ranges_match_package_json() -> None:
    package = package_settings()
    server = python_settings()
    assert set(package) == set(server) | set(settings.CLIENT_ONLY)
    for name, (json_type, default, minimum, maximum) in server.items():
        spec = package[name]
        found = (spec["type"], spec["default"], spec.get("minimum"), spec.get("maximum"))
        assert found == (json_type, default, minimum, maximum), name


@pytest.mark.parametrize(("name", "value"), [("temporaryAllocationThreshold", 65),
                         ("hideBelowShare", 1.5), ("diagnostics.topN", -1)])  # fmt: skip
def test_values_outside_package_json_ranges_are_refused(name: str, value: Any) -> None:
    spec = package_settings()[name]
    assert not spec.get("minimum", value) <= value <= spec.get("maximum", value)
    head, _, leaf = name.rpartition(".")
    raw: dict[str, Any] = {leaf: value}
    if head:
        raw = {head: raw}
    _, problems = settings.parse(raw)
    assert len(problems) == 1 and problems[0].startswith(f"memlens.{name}: {value} ")
