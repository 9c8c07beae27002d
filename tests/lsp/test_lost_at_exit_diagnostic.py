"""The leak diagnostic is for memory lost at exit, not for memory a module global still
references (the real server over stdio, a real `memlens run`)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pytest_lsp import LanguageClient
from test_hostile import hover_text
from test_server import profile
from test_views import open_document

pytestmark = pytest.mark.asyncio(loop_scope="function")

# 0-based lines: the module global on 2, the cycle on 7
SCRIPT = """import gc

table = {"kept": bytearray(2 * 2**20)}  # 2 MiB kept to the end by a module global


def lose():
    # 2 MiB in a reference cycle the collector never frees
    pair = [bytearray(2 * 2**20)]
    pair.append(pair)


gc.disable()
lose()
"""


async def test_module_global_memory_gets_no_leak_diagnostic_lost_memory_does(
    client: LanguageClient, workspace: Path
) -> None:
    script = workspace / "kept_and_lost.py"
    script.write_text(SCRIPT)
    open_document(client, script)
    result = await profile(client, script)
    assert result["exitCode"] == 0
    uri = script.as_uri()
    leaks = [(d.range.start.line, d.message) for d in client.diagnostics[uri] if d.code == "leak"]
    # the bytearray's object (56 B) and its buffer (2 MiB + 1): 2.0 MiB
    assert leaks == [
        (
            7,
            "charged to this line: lost 2.0 MiB (2 allocations)"
            " · held by an uncollected reference cycle",
        )
    ]
    kept = (await hover_text(client, uri, 2)).splitlines()
    live = next(row for row in kept if row.startswith("| live at exit |"))
    referenced = next(row for row in kept if row.startswith("| still referenced at exit |"))
    assert live.replace("live at exit", "still referenced at exit") == referenced
    assert "| still referenced at exit | 2.0 MiB (" in referenced
    assert "| lost | 0 B (0 allocations) |" in kept
    lost = (await hover_text(client, uri, 7)).splitlines()
    assert "| still referenced at exit | 0 B (0 allocations) |" in lost
    assert "| lost | 2.0 MiB (2 allocations) |" in lost
