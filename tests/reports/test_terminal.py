"""Terminal tables and frame classification."""

from __future__ import annotations

import io
import re

import pytest

from memlens.reports import locations, terminal


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
    assert locations.kind(file) == kind
    assert locations.module(file) == module
