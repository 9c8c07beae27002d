"""Terminal tables and frame classification."""

from __future__ import annotations

import io
import re

import pytest

from memlens import origins
from memlens.reports import terminal


def test_plain_table_aligns() -> None:
    text = terminal.table(
        ["size", "where"], [["10.0 MiB", "a.py:1"], ["1 B", "bb.py:22"]], right=[True, False]
    )
    assert text.splitlines() == [
        "    size  where",
        "--------- --------",
        "10.0 MiB  a.py:1",
        "     1 B  bb.py:22",
    ]


def test_boxed_table() -> None:
    text = terminal.table(["a", "b"], [["1", "xy"]], boxed=True, title="T")
    plain = re.sub(r"\x1b\[[0-9;]*m", "", text)  # bold headers on a terminal
    assert plain.splitlines() == [
        "T",
        "┏━━━┳━━━━┓",
        "┃ a ┃ b  ┃",
        "┡━━━╇━━━━┩",
        "│ 1 │ xy │",
        "└───┴────┘",
    ]


class FakeTTY(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_is_tty(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MEMLENS_PLAIN", raising=False)
    assert terminal.is_tty(FakeTTY())
    assert not terminal.is_tty(io.StringIO())
    monkeypatch.setenv("MEMLENS_PLAIN", "1")
    assert not terminal.is_tty(FakeTTY())


@pytest.mark.parametrize(
    ("file", "kind", "module"),
    [
        ("/home/me/app.py", "user", "/home/me/app.py"),
        ("<string>", "user", "<string>"),
        ("/usr/lib/python3.11/json/decoder.py", "library", "json"),
        ("/usr/lib/python3.11/typing.py", "library", "typing"),
        ("/v/lib/python3.11/site-packages/numpy/core/numeric.py", "library", "numpy"),
        ("/usr/lib/python3/dist-packages/six.py", "library", "six"),
        ("<frozen importlib._bootstrap>", "import", "importlib"),
        ("<frozen importlib._bootstrap_external>", "import", "importlib"),
        ("/usr/lib/python3.11/importlib/__init__.py", "import", "importlib"),
        ("<frozen os>", "library", "os"),
    ],
)
def test_locations(file: str, kind: str, module: str) -> None:
    assert origins.kind(file) == kind
    assert origins.module(file) == module


def test_safe_escapes_control_characters() -> None:
    assert (
        terminal.safe("a\x1b[31mb\x07c\x00d\re\u202ef") == "a\\x1b[31mb\\x07c\\x00d\\x0de\\u202ef"
    )
    assert terminal.safe("plain [bold] `code` <img>") == "plain [bold] `code` <img>"


def test_path_is_relative_under_the_working_directory(tmp_path) -> None:
    inside = tmp_path / "pkg" / "mod.py"
    assert terminal.path(str(inside), cwd=str(tmp_path)) == "pkg/mod.py"
    assert terminal.path("/elsewhere/mod.py", cwd=str(tmp_path)) == "/elsewhere/mod.py"
    assert terminal.path("<frozen os>", cwd=str(tmp_path)) == "<frozen os>"


@pytest.mark.parametrize("boxed", [False, True])
@pytest.mark.parametrize("width", [40, 60, 100])
def test_tables_fit_the_width(boxed: bool, width: int) -> None:
    long = "/very/long/" + "directory/" * 20 + "module.py:12"
    text = terminal.table(
        ["bytes", "location", "tree"],
        [["10.0 MiB", long, "|  " * 40 + "leaf"]],
        right=[True, False, False],
        clip=[False, False, True],
        boxed=boxed,
        width=width,
    )
    plain = re.sub(r"\x1b\[[0-9;]*m", "", text)
    assert max(len(line) for line in plain.splitlines()) <= width
    assert "10.0 MiB" in plain  # numbers are never cut
    assert "".join(plain.split()).count("module.py:12") == 1 or "module.py" in plain
    assert "…" in plain  # the clipped column ends in an ellipsis


def test_columns(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COLUMNS", raising=False)
    assert terminal.columns(io.StringIO()) == terminal.PIPE_WIDTH
    monkeypatch.setenv("COLUMNS", "132")
    assert terminal.columns(io.StringIO()) == 132
    monkeypatch.setenv("COLUMNS", "junk")
    assert terminal.columns(io.StringIO()) == terminal.PIPE_WIDTH
