"""Lenses and inlay hints: the final numbers at once when a run ends, and one total per idea (a
function's total is never below one of its lines')."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest
from lsprotocol import types
from pytest_lsp import LanguageClient
from test_server import profile

from memlens.lsp.features import code_lens

pytestmark = pytest.mark.asyncio(loop_scope="function")

MIB = 2**20
# A checkpoint (after 1 s) sees `first` only; the final profile sees `second` too.
SLOW = """import time


def work():
    first = bytearray(8 * 2**20)  # line 5
    time.sleep(2.2)
    second = bytearray(4 * 2**20)  # line 7
    return first, second


kept = work()  # line 11
"""


def open_document(client: LanguageClient, script: Path) -> None:
    client.text_document_did_open(
        types.DidOpenTextDocumentParams(
            text_document=types.TextDocumentItem(
                uri=script.as_uri(), language_id="python", version=1, text=script.read_text()
            )
        )
    )


async def code_lenses(client: LanguageClient, uri: str) -> list[types.CodeLens]:
    return await client.text_document_code_lens_async(
        types.CodeLensParams(text_document=types.TextDocumentIdentifier(uri=uri))
    )


async def lens_titles(client: LanguageClient, uri: str) -> dict[int, str]:
    """The functions' lenses (`▲ peak · Σ total`) by line; the run's own lenses left out."""
    titles = [
        (lens.range.start.line, lens.command.title) for lens in await code_lenses(client, uri)
    ]
    return {line: title for line, title in titles if title.startswith("▲")}


async def hint_labels(client: LanguageClient, uri: str, lines: int) -> dict[int, str]:
    hints = await client.text_document_inlay_hint_async(
        types.InlayHintParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            range=types.Range(
                start=types.Position(line=0, character=0),
                end=types.Position(line=lines, character=0),
            ),
        )
    )
    return {h.position.line: "".join(p.value for p in h.label) for h in hints}


def total(label: str) -> float:
    """The Σ of a `▲ peak · Σ total` label, in MiB."""
    number, unit = re.search(r"Σ ([\d.]+) (B|KiB|MiB)", label).groups()  # type: ignore[union-attr]
    return float(number) * {"B": 1 / MIB, "KiB": 1 / 1024, "MiB": 1}[unit]


async def test_run_end_refreshes_lenses_and_hints_before_the_status(
    client: LanguageClient, workspace: Path
) -> None:
    script = workspace / "slow.py"
    script.write_text(SLOW)
    open_document(client, script)
    result = await profile(client, script)
    assert result["peakText"] == "12.0 MiB"
    events: list[str] = client.memlens_events  # type: ignore[attr-defined]
    assert "live" in events, f"no checkpoint was shown while the script slept: {events}"
    # The final profile: its refreshes come after the last live one and before the status bar's
    # update, with nothing in between.
    assert events[-3:] == ["codeLens/refresh", "inlayHint/refresh", "final"], events
    last_live = len(events) - 1 - events[::-1].index("live")
    assert events[last_live + 1 :] == ["codeLens/refresh", "inlayHint/refresh", "final"], events

    uri = script.as_uri()
    lenses = await lens_titles(client, uri)
    hints = await hint_labels(client, uri, len(SLOW.splitlines()))
    assert lenses == {3: "▲ 12.0 MiB · Σ 12.0 MiB"}
    assert hints[4] == "▲ 8.0 MiB · Σ 8.0 MiB"
    assert hints[6] == "▲ 4.0 MiB · Σ 4.0 MiB"
    assert hints[10] == "▲ 12.0 MiB · Σ 12.0 MiB"
    # work() spans lines 3..7 (0-based): its total holds each of its lines' totals
    for line in range(3, 8):
        if line in hints:
            assert total(lenses[3]) >= total(hints[line]), (line, lenses[3], hints[line])


async def test_function_lenses_wait_for_the_end_of_a_live_run(
    client: LanguageClient, workspace: Path
) -> None:
    # VS Code redraws lenses later than hints: a lens showing a checkpoint's numbers could sit
    # below its lines' final ones, so a function's lens has numbers only once the run ended.
    script = workspace / "slow.py"
    script.write_text(SLOW)
    open_document(client, script)
    events: list[str] = client.memlens_events  # type: ignore[attr-defined]
    running = asyncio.ensure_future(profile(client, script))

    async def first_checkpoint() -> None:
        while "live" not in events:
            assert not running.done(), events
            await asyncio.sleep(0.05)

    await asyncio.wait_for(first_checkpoint(), timeout=60)
    uri = script.as_uri()
    assert await lens_titles(client, uri) == {3: code_lens.LIVE_TITLE}
    assert (await hint_labels(client, uri, len(SLOW.splitlines())))[4] == "▲ 8.0 MiB · Σ 8.0 MiB"
    await running
    assert await lens_titles(client, uri) == {3: "▲ 12.0 MiB · Σ 12.0 MiB"}
