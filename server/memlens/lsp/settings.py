"""The server's settings: a tree of defaulted dataclasses, parsed leniently.

A bad value falls back to its default and is reported (the server tells the user with
`window/showMessage`); it never stops the server.
"""

from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class DiagnosticSettings:
    top_n: int = 10  # how many lines get a diagnostic
    min_mib: float = 1.0  # below this a line gets none
    min_share: float = 0.01  # nor below this share of the run's peak


@dataclass(frozen=True)
class Settings:
    python: str = field(
        default_factory=lambda: sys.executable
    )  # interpreter of the profiled program
    args: tuple[str, ...] = ()
    cwd: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    python_allocators: bool = True
    follow_fork: bool = False
    include_libraries: bool = False  # annotate site-packages and the standard library too
    diagnostics: DiagnosticSettings = field(default_factory=DiagnosticSettings)
    inlay_hints: bool = True
    leak_diagnostics: bool = True
    # lines and functions under this share of the run's peak and of its total get no hint or lens
    hide_below_share: float = 0.005
    # a block freed within this many allocations of its thread is temporary (Memray's default)
    temporary_allocation_threshold: int = 1
    # the inline text adds each line's change of peak since the previous run of the same script
    show_change_since_previous_run: bool = False


def _check(name: str, value: Any, kind: type | tuple[type, ...], problems: list[str]) -> bool:
    if isinstance(value, kind) and not (
        kind in (int, float, (int, float)) and isinstance(value, bool)
    ):
        return True
    problems.append(f"memlens.{name}: {value!r} is not valid; using the default")
    return False


def parse(raw: Any) -> tuple[Settings, list[str]]:
    """Settings from the client's `memlens` section (camelCase keys), and the problems found."""
    problems: list[str] = []
    if raw is None:
        return Settings(), problems
    if not isinstance(raw, dict):
        return Settings(), [
            f"memlens settings must be an object, not {type(raw).__name__}; using defaults"
        ]
    values: dict[str, Any] = {}
    simple = {
        "python": ("python", str),
        "cwd": ("cwd", str),
        "pythonAllocators": ("python_allocators", bool),
        "followFork": ("follow_fork", bool),
        "includeLibraries": ("include_libraries", bool),
        "inlayHints": ("inlay_hints", bool),
        "leakDiagnostics": ("leak_diagnostics", bool),
        "showChangeSincePreviousRun": ("show_change_since_previous_run", bool),
    }
    for key, (attr, kind) in simple.items():
        if raw.get(key) is None:
            continue
        if _check(key, raw[key], kind, problems) and not (kind is str and not raw[key].strip()):
            values[attr] = raw[key]
    if raw.get("args") is not None:
        args = raw["args"]
        if isinstance(args, list) and all(isinstance(a, str) for a in args):
            values["args"] = tuple(args)
        else:
            problems.append(f"memlens.args: {args!r} is not a list of strings; using the default")
    if raw.get("env") is not None:
        env = raw["env"]
        if isinstance(env, dict) and all(isinstance(v, str) for v in env.values()):
            values["env"] = {str(k): v for k, v in env.items()}
        else:
            problems.append(f"memlens.env: {env!r} is not an object of strings; using the default")
    diagnostics = raw.get("diagnostics")
    if diagnostics is not None:
        values["diagnostics"] = _diagnostics(diagnostics, problems)
    share = _share("hideBelowShare", raw.get("hideBelowShare"), problems)
    if share is not None:
        values["hide_below_share"] = share
    threshold = raw.get("temporaryAllocationThreshold")
    if threshold is not None and _check("temporaryAllocationThreshold", threshold, int, problems):
        if 0 <= threshold <= 64:
            values["temporary_allocation_threshold"] = threshold
        else:
            problems.append(
                f"memlens.temporaryAllocationThreshold: {threshold} is not from 0 to 64; "
                "using the default"
            )
    return dataclasses.replace(Settings(), **values), problems


def _share(name: str, value: Any, problems: list[str]) -> float | None:
    """A share from 0 to 1, or None (the default) when missing or bad (then reported)."""
    if value is None or not _check(name, value, (int, float), problems):
        return None
    if 0 <= value <= 1:
        return float(value)
    problems.append(f"memlens.{name}: {value} is not a share from 0 to 1; using the default")
    return None


def _diagnostics(raw: Any, problems: list[str]) -> DiagnosticSettings:
    if not isinstance(raw, dict):
        problems.append(f"memlens.diagnostics: {raw!r} is not an object; using the defaults")
        return DiagnosticSettings()
    values: dict[str, Any] = {}
    top_n = raw.get("topN")
    if top_n is not None and _check("diagnostics.topN", top_n, int, problems):
        if top_n >= 0:
            values["top_n"] = top_n
        else:
            problems.append(f"memlens.diagnostics.topN: {top_n} is negative; using the default")
    for key, attr in (("minMiB", "min_mib"), ("minShare", "min_share")):
        value = raw.get(key)
        if value is not None and _check(f"diagnostics.{key}", value, (int, float), problems):
            if value >= 0:
                values[attr] = float(value)
            else:
                problems.append(
                    f"memlens.diagnostics.{key}: {value} is negative; using the default"
                )
    return dataclasses.replace(DiagnosticSettings(), **values)
