"""The server's settings: a tree of defaulted attrs classes, parsed leniently.

The wire names are the fields' camelCase names (protocol.converter). Defaults and ranges are
written here and in the extension's package.json (the settings section users see), and
tests/lsp/test_protocol_ts.py fails when the two differ; settings.ts reads package.json.
A bad value falls back to its default and is reported (the server tells the user with
`window/showMessage`); it never stops the server.
"""

from __future__ import annotations

import sys
import typing
from typing import Any

import attrs

from memlens.lsp import protocol

# The settings only the extension reads (package.json declares them too).
CLIENT_ONLY = ("heat", "installSource")


def _range(minimum: float | None = None, maximum: float | None = None) -> dict[str, Any]:
    return {"minimum": minimum, "maximum": maximum}


@attrs.frozen
class DiagnosticSettings:
    top_n: int = attrs.field(default=10, metadata=_range(0))  # how many lines get a diagnostic
    # below this a line gets none
    min_mib: float = attrs.field(default=1.0, metadata={**_range(0), "wire": "minMiB"})
    min_share: float = attrs.field(default=0.01, metadata=_range(0, 1))  # nor below this share


@attrs.frozen
class Settings:
    # the interpreter of the profiled program; "" (package.json's default): the server's own
    python: str = attrs.field(factory=lambda: sys.executable)
    args: list[str] = attrs.field(factory=list)
    cwd: str | None = None  # "" or unset: the workspace folder
    env: dict[str, str] = attrs.field(factory=dict)
    python_allocators: bool = True
    follow_fork: bool = False
    include_libraries: bool = False  # annotate site-packages and the standard library too
    diagnostics: DiagnosticSettings = attrs.field(factory=DiagnosticSettings)
    inlay_hints: bool = True
    leak_diagnostics: bool = True
    # lines and functions under this share of the run's peak and of its total get no hint or lens
    hide_below_share: float = attrs.field(default=0.005, metadata=_range(0, 1))
    # a block freed within this many allocations of its thread is temporary (Memray's default)
    temporary_allocation_threshold: int = attrs.field(default=1, metadata=_range(0, 64))
    # the inline text adds each line's change of peak since the previous run of the same script
    show_change_since_previous_run: bool = False


def parse(raw: Any) -> tuple[Settings, list[str]]:
    """Settings from the client's `memlens` section (camelCase keys), and the problems found."""
    if raw is None:
        return Settings(), []
    if not isinstance(raw, dict):
        return Settings(), [
            f"memlens settings must be an object, not {type(raw).__name__}; using defaults"
        ]
    problems: list[str] = []
    accepted = _accepted(Settings, raw, "memlens.", problems)
    return protocol.converter.structure(accepted, Settings), problems


def _accepted(kind: type[Any], raw: dict[str, Any], prefix: str, problems: list[str]) -> Any:
    """The values of `raw` that fit `kind`'s fields, by wire name; the others are reported."""
    hints = typing.get_type_hints(kind)
    accepted: dict[str, Any] = {}
    for field in attrs.fields(kind):
        key, hint = protocol.wire_name(field), hints[field.name]
        value = raw.get(key)
        if value is None:
            continue
        if attrs.has(hint):
            if isinstance(value, dict):
                accepted[key] = _accepted(hint, value, f"{prefix}{key}.", problems)
            else:
                problems.append(f"{prefix}{key}: {value!r} is not an object; using the defaults")
            continue
        problem = _problem(value, hint, field.metadata)
        if problem is not None:
            problems.append(f"{prefix}{key}: {problem}; using the default")
        elif not (isinstance(value, str) and not value.strip()):  # "": the default
            accepted[key] = value
    return accepted


def _problem(value: Any, hint: Any, limits: Any) -> str | None:
    if not protocol.fits(value, hint):
        return f"{value!r} is not valid"
    low, high = limits.get("minimum"), limits.get("maximum")
    if low is not None and high is not None and not low <= value <= high:
        return f"{value} is not {'a share ' if high == 1 else ''}from {low} to {high}"
    if low is not None and value < low:
        return f"{value} is negative"
    return None
