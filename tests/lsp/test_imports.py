"""The language server's dependency arrows: features import the session, the handlers and the
protocol, never the server module (which imports them) nor each other."""

from __future__ import annotations

import ast
from pathlib import Path

import memlens.lsp.features

FEATURES = Path(memlens.lsp.features.__file__).parent


def imported(path: Path) -> set[str]:
    """Every module a file imports, `from a import b` counted as both a and a.b."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def forbidden(path: Path) -> list[str]:
    own = f"memlens.lsp.features.{path.stem}"
    return sorted(
        name
        for name in imported(path)
        if name == "memlens.lsp.server"
        or (name.startswith("memlens.lsp.features.") and not (name + ".").startswith(own + "."))
    )


def test_features_import_neither_the_server_nor_each_other() -> None:
    features = sorted(p for p in FEATURES.glob("*.py") if p.name != "__init__.py")
    assert len(features) >= 7
    assert {p.name: forbidden(p) for p in features} == {p.name: [] for p in features}


def test_the_check_sees_a_bad_import(tmp_path: Path) -> None:
    bad = tmp_path / "hover.py"
    bad.write_text(
        "from memlens.lsp.features import commands\n"
        "if True:\n    import memlens.lsp.server\n"
        "from memlens.lsp.features.hover import markdown\n"
    )
    assert forbidden(bad) == ["memlens.lsp.features.commands", "memlens.lsp.server"]
