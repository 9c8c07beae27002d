"""Names from the profiled program reach the terminal escaped: ESC, BEL, NUL and CR are shown as
`\\x1b`-style escapes, rich markup in a name prints literally, in every report and on a TTY too."""

from __future__ import annotations

import re
from pathlib import Path

import capture_writer
import pytest
from synthetic import MAIN, build, values

from memlens import capture
from memlens.cli import main as memlens
from memlens.model import Profile

MIB = 2**20
EVIL_FUNCTION = "evil\x1b]0;owned\x07\x00[bold red]x[/bold red]`<img src=x onerror=alert(1)>`\r"
EVIL_FILE = "/app/\x1b[2Jwipe.py"
RAW = ("\x1b", "\x07", "\x00", "\r")


def hostile() -> Profile:
    profile = build([([MAIN, (EVIL_FUNCTION, EVIL_FILE, 7, 1)], values(peak=MIB, count=2))])
    profile.meta.argv.append("--name=\x1b[31mred")
    return profile


@pytest.fixture
def cap(tmp_path: Path) -> Path:
    path = tmp_path / "hostile.msgpack"
    capture_writer.dump(hostile(), path)
    return path


@pytest.mark.parametrize(
    "argv",
    [
        ["summary"],
        ["summary", "--show-imports"],
        ["table"],
        ["table", "--total"],
        ["tree"],
        ["stats"],
        ["lines", EVIL_FILE],
    ],
)
def test_reports_escape_names(
    argv: list[str], cap: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "250")  # one line per row: the names are not folded
    command, *flags = argv
    assert memlens([command, str(cap), *flags]) == 0
    out = capsys.readouterr().out
    for raw in RAW:
        assert raw not in out.replace("\n", "")
    assert "\\x1b" in out
    if command != "lines":
        assert "[bold red]x[/bold red]" in out  # printed as text, not read as markup
        assert "\\x07\\x00" in out


def test_escaped_on_a_terminal_too(cap: Path) -> None:
    from memlens.reports import summary, table, tree

    profile = capture.load(cap)
    for text in (
        summary.render(profile, boxed=True),
        table.render(profile, boxed=True),
        tree.render(profile, boxed=True),
    ):
        # the only escape sequences are rich's own styles (bold headers): SGR codes
        assert not re.search(r"\x1b(?!\[[0-9;]*m)", text)
        for raw in RAW[1:]:
            assert raw not in text.replace("\r\n", "\n")
        assert "\\x1b]0;owned\\x07" in text


def test_errors_escape_names(cap: Path, capsys) -> None:
    assert memlens(["lines", str(cap), "nope.py"]) == 2
    err = capsys.readouterr().err
    assert "\x1b" not in err and "/app/\\x1b[2Jwipe.py" in err
