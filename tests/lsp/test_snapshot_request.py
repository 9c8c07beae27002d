"""memlens.snapshot: a live run takes an object snapshot when the editor asks (a real script
under the real server, real tracker)."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest
from pytest_lsp import LanguageClient
from test_hostile import hover_text
from test_server import command, messages_after, profile
from test_views import open_document

from memlens import capture
from memlens.reports import types as object_types

pytestmark = pytest.mark.asyncio(loop_scope="function")

# Holds 1,000 bytearray(1000) from line 3, then waits, running Python code, for the test to
# say stop (at most 60 s).
HOLDS = """import pathlib, time
here = pathlib.Path(__file__).parent
held = [bytearray(1000) for _ in range(1000)]  # line 3
(here / "ready").write_text("ready")
for _ in range(3000):
    if (here / "stop").exists():
        break
    time.sleep(0.02)
"""


async def wait_for(path: Path) -> None:
    for _ in range(600):
        if path.exists():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{path} never appeared")


async def test_snapshot_mid_run_counts_what_the_script_holds(
    client: LanguageClient, workspace: Path
) -> None:
    script = workspace / "holds.py"
    script.write_text(HOLDS)
    open_document(client, script)
    running = asyncio.ensure_future(profile(client, script))
    await wait_for(workspace / "ready")
    taken = await command(client, "memlens.snapshot", {"label": "mid"})
    assert taken["label"] == "mid"
    assert taken["count"] >= 1000 and taken["text"].startswith("snapshot 'mid' at ")

    # While the run is live, the hover shows the snapshot's types at once.
    text = await hover_text(client, script.as_uri(), 2)
    assert "**Live objects at snapshot \\'mid\\'**" in text  # markdown-escaped quotes
    assert "- `bytearray`: 1,000 objects, 1.0 MiB" in text
    assert "_Types are recorded at snapshots and at exit\\, not at the run\\'s peak._" in text

    (workspace / "stop").write_text("stop")
    result = await running
    assert result["exitCode"] == 0
    profile_ = capture.load(result["capturePath"])
    mid = object_types.snapshot_at(profile_, "mid")
    here = [
        (name, count, size)
        for name, count, size in object_types.at_line(profile_, mid, str(script), 3)
        if name == "bytearray"
    ]
    # exact: each is its object and its 1,001-byte buffer, as sys.getsizeof says
    assert here == [("bytearray", 1000, 1000 * sys.getsizeof(bytearray(1000)))]
    assert object_types.labels(profile_) == ["mid", "exit"]
    # The snapshot ran between two of the script's bytecodes, as a sleep returned: nothing it
    # did is charged to the script's sleeping line (3.10 charged the handler's frame there).
    sleeping = profile_.lines.line(str(script), 8)
    assert sleeping is None or sleeping.self.alloc_count == 0, sleeping


async def test_default_labels_count_up(client: LanguageClient, workspace: Path) -> None:
    script = workspace / "holds.py"
    script.write_text(HOLDS)
    running = asyncio.ensure_future(profile(client, script))
    await wait_for(workspace / "ready")
    first = await command(client, "memlens.snapshot", {})
    second = await command(client, "memlens.snapshot")
    assert (first["label"], second["label"]) == ("editor-1", "editor-2")
    (workspace / "stop").write_text("stop")
    await running


async def test_no_live_run_is_one_message(client: LanguageClient) -> None:
    shown, result = await messages_after(client, command(client, "memlens.snapshot", {}))
    assert result is None
    assert shown == ["memlens: no live run to take a snapshot of: profile a script or attach first"]


async def test_a_program_that_runs_no_python_code_gets_an_error_not_a_hang(
    client: LanguageClient, workspace: Path
) -> None:
    script = workspace / "sleeps.py"
    script.write_text(
        "import pathlib, time\n"
        "(pathlib.Path(__file__).parent / 'ready').write_text('ready')\n"
        "time.sleep(12)\n"
    )
    running = asyncio.ensure_future(profile(client, script))
    await wait_for(workspace / "ready")
    shown, result = await messages_after(client, command(client, "memlens.snapshot", {}))
    assert result is None
    assert shown == [
        "memlens: snapshot 'editor-1' did not arrive within 10 s: the program's main thread ran"
        " no Python code (a long C call or sleep); it is queued and will be taken when the main"
        " thread next runs Python code"
    ]
    # ... and it is: once the sleep returns, the snapshot is taken before exit.
    result = await running
    assert object_types.labels(capture.load(result["capturePath"])) == ["editor-1", "exit"]
