"""What the editor says about a line's memory in words: the hover's ▲ and Σ, and the change of
each line's peak since the previous run of the same script (memlens.showChangeSincePreviousRun)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from pytest_lsp import LanguageClient
from test_hostile import hover_text
from test_server import command, profile
from test_views import hint_labels, open_document

from memlens.units import format_bytes

pytestmark = pytest.mark.asyncio(loop_scope="function")

GROWS = """def work():
    kept = bytearray({size} * 2**20)  # line 2
    same = bytearray(4 * 2**20)  # line 3
    return kept, same


result = work()  # line 7
"""


async def run_twice(client: LanguageClient, script: Path) -> dict[int, str]:
    """Profile the script with 10 MiB on line 2, then with 22 MiB: the hints after the second."""
    script.write_text(GROWS.format(size=10))
    open_document(client, script)
    assert (await profile(client, script))["peakText"] == "14.0 MiB"
    script.write_text(GROWS.format(size=22))
    assert (await profile(client, script))["peakText"] == "26.0 MiB"
    return await hint_labels(client, script.as_uri(), 8)


@pytest.mark.settings({"showChangeSincePreviousRun": True, "hideBelowShare": 0})
async def test_second_run_shows_the_change_per_line(
    client: LanguageClient, workspace: Path
) -> None:
    hints = await run_twice(client, workspace / "grows.py")
    # the object headers are the same in both runs: the change is the 12 MiB buffer exactly
    assert hints[1] == "▲ 22.0 MiB · Σ 22.0 MiB · +12.0 MiB"
    assert hints[2] == "▲ 4.0 MiB · Σ 4.0 MiB"  # unchanged: no change shown
    assert hints[6] == "▲ 26.0 MiB · Σ 26.0 MiB · +12.0 MiB"


@pytest.mark.settings({"hideBelowShare": 0})
async def test_the_change_is_off_by_default(client: LanguageClient, workspace: Path) -> None:
    hints = await run_twice(client, workspace / "grows.py")
    assert hints[1] == "▲ 22.0 MiB · Σ 22.0 MiB"


async def test_first_run_shows_no_change(client: LanguageClient, workspace: Path) -> None:
    script = workspace / "grows.py"
    script.write_text(GROWS.format(size=10))
    open_document(client, script)
    await profile(client, script)
    hints = await hint_labels(client, script.as_uri(), 8)
    assert hints[1] == "▲ 10.0 MiB · Σ 10.0 MiB"


async def test_hover_says_what_the_symbols_mean(client: LanguageClient, workspace: Path) -> None:
    script = workspace / "alloc.py"
    await profile(client, script)
    text = await hover_text(client, script.as_uri(), 10)  # the 30 MiB spike, freed before the end
    lines = text.splitlines()
    first = next(line for line in lines if line.startswith("▲ "))
    second = lines[lines.index(first) + 1]
    assert first.startswith("▲ 30.0 MiB: held at the run's peak (")
    assert first.endswith(" s in) by memory allocated on this line or in the functions it calls.  ")
    assert second == (
        "Σ 30.0 MiB: allocated over the whole run by this line and the functions it calls,"
        " freed or not."
    )


CACHE = """class Cache:
    entries = {}


def fill():
    for i in range(10_000):
        Cache.entries[i] = bytearray(1000)  # line 7


fill()  # line 10
"""


async def test_hover_names_the_holder_of_memory_still_referenced(
    client: LanguageClient, workspace: Path
) -> None:
    script = workspace / "cache.py"
    script.write_text(CACHE)
    open_document(client, script)
    await profile(client, script)
    uri = script.as_uri()
    # a class attribute still references them at exit: no leak, the hover names the holder
    assert [d for d in client.diagnostics[uri] if d.code == "leak"] == []

    text = await hover_text(client, uri, 6)
    objects = text[text.index("**Live objects at exit**") :].splitlines()
    assert objects[2] == "- `bytearray`: 10,000 objects, 10.1 MiB"
    held = objects.index("**Held by** (10,000 `bytearray` objects, 10.1 MiB):")
    assert objects[held + 1] == r"- Cache\.entries \(dict\, 10\,000 items\)"
    # the class was made on line 1: its step links there
    assert objects[held + 2] == f"- [class Cache]({uri}#L1)"
    assert objects[held + 3] == rf"- [module \_\_main\_\_]({uri}#L1)"


STORE = """class Store:
    entries = {}


def fill():
    for i in range(1_000):
        Store.entries[i] = bytearray(100)  # line 7
"""


async def test_holder_steps_made_before_tracking_link_to_their_definition(
    client: LanguageClient, workspace: Path
) -> None:
    """The class and its module exist before the Tracker starts: no allocating stack (-1), so
    the steps link to the `class` line and the module's first line."""
    store = workspace / "store.py"
    store.write_text(STORE)
    capture_path = workspace / "store.msgpack"
    main = workspace / "main.py"
    main.write_text(
        f"import memlens, store\nwith memlens.Tracker({str(capture_path)!r}):\n    store.fill()\n"
    )
    done = subprocess.run([sys.executable, str(main)], cwd=workspace, capture_output=True)
    assert done.returncode == 0, done.stderr
    assert (await command(client, "memlens.loadCapture", {"path": str(capture_path)})) is not None
    open_document(client, store)
    text = await hover_text(client, store.as_uri(), 6)
    objects = text[text.index("**Live objects at exit**") :].splitlines()
    size = format_bytes(1_000 * sys.getsizeof(bytearray(100)))  # each: object and 101-B buffer
    held = objects.index(f"**Held by** (1,000 `bytearray` objects, {size}):")
    uri = store.as_uri()
    assert objects[held + 1 :][:3] == [
        r"- Store\.entries \(dict\, 1\,000 items\)",
        f"- [class Store]({uri}#L1)",
        f"- [module store]({uri}#L1)",
    ]
