"""memlens.hideBelowShare: lines and functions under a share of the peak and of the total get no
inlay hint or lens, and the hover and the run's lens say how many were hidden."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from lsprotocol import types
from pytest_lsp import LanguageClient
from test_server import profile
from test_views import code_lenses, hint_labels, lens_titles, open_document

pytestmark = pytest.mark.asyncio(loop_scope="function")

# 8 MiB; 16 KiB (0.19 % of the peak and of the total); the def statements (~150 B each).
SCRIPT = """def big():
    return bytearray(8 * 2**20)  # line 2


def small():
    return bytearray(16 * 2**10)  # line 6


kept = [big(), small()]  # line 9
"""
BIG = "▲ 8.0 MiB · Σ 8.0 MiB"
SMALL = "▲ 16.1 KiB · Σ 16.1 KiB"  # the bytearray and its object header
DEF = re.compile(r"▲ \d+ B · Σ \d+ B")  # a function object: its size varies by Python version


class Shown:
    def __init__(self, hints: dict[int, str], lenses: dict[int, str], hover: str, tip: str | None):
        self.hints, self.lenses, self.hover, self.tooltip = hints, lenses, hover, tip


async def profile_and_look(client: LanguageClient, workspace: Path) -> Shown:
    script = workspace / "noise.py"
    script.write_text(SCRIPT)
    open_document(client, script)
    result = await profile(client, script)
    assert result["peakText"] == "8.0 MiB"
    uri = script.as_uri()
    hover = await client.text_document_hover_async(
        types.HoverParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            position=types.Position(line=1, character=4),
        )
    )
    (run,) = [c for c in await code_lenses(client, uri) if c.command.title.startswith("memlens:")]
    return Shown(
        await hint_labels(client, uri, 10),
        await lens_titles(client, uri),
        hover.contents.value.splitlines()[-1],
        run.command.tooltip,
    )


def hidden(lines: str, functions: str, share: str) -> str:
    return (
        f"{lines} and {functions} of this file under {share} % of the peak and of the total"
        " have no inline numbers (memlens.hideBelowShare)"
    )


@pytest.mark.settings({"hideBelowShare": 0})
async def test_zero_shows_every_line(client: LanguageClient, workspace: Path) -> None:
    shown = await profile_and_look(client, workspace)
    assert sorted(shown.hints) == [0, 1, 4, 5, 8]
    assert (shown.hints[1], shown.hints[5], shown.hints[8]) == (BIG, SMALL, BIG)
    assert DEF.fullmatch(shown.hints[0]) and DEF.fullmatch(shown.hints[4]), shown.hints
    assert shown.lenses == {0: BIG, 4: SMALL}
    assert shown.tooltip is None
    assert "hideBelowShare" not in shown.hover


async def test_default_hides_what_is_under_half_a_percent(
    client: LanguageClient, workspace: Path
) -> None:
    shown = await profile_and_look(client, workspace)
    assert shown.hints == {1: BIG, 8: BIG}
    assert shown.lenses == {0: BIG}
    assert shown.tooltip == hidden("3 lines", "1 function", "0.5")
    # markdown-escaped, in italics
    assert shown.hover == (
        r"_3 lines and 1 function of this file under 0\.5 \% of the peak and of the total"
        r" have no inline numbers \(memlens\.hideBelowShare\)_"
    )


@pytest.mark.settings({"hideBelowShare": 0.001})
async def test_a_lower_share_shows_the_small_buffer(
    client: LanguageClient, workspace: Path
) -> None:
    shown = await profile_and_look(client, workspace)
    assert shown.hints == {1: BIG, 5: SMALL, 8: BIG}
    assert shown.lenses == {0: BIG, 4: SMALL}
    assert shown.tooltip == hidden("2 lines", "0 functions", "0.1")


@pytest.mark.settings({"hideBelowShare": 2})
async def test_a_bad_share_falls_back_to_the_default_and_says_so(
    client: LanguageClient, workspace: Path
) -> None:
    shown = await profile_and_look(client, workspace)
    assert shown.hints == {1: BIG, 8: BIG}
    said = [m.message for m in client.messages if "hideBelowShare" in m.message]
    assert said == [
        "memlens: memlens.hideBelowShare: 2 is not a share from 0 to 1; using the default"
    ]
