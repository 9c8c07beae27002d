"""Hostile input the server meets through its own features: names in captures (hover), files
outside the workspace (trust), launch settings that cannot work, and loads that never end."""

from __future__ import annotations

import asyncio
import importlib.util
import os
import re
import sys
from pathlib import Path
from typing import Any

import capture_writer
import pytest
from lsprotocol import types
from markdown_it import MarkdownIt
from pygls.exceptions import JsonRpcException
from pytest_lsp import LanguageClient
from test_server import command, messages_after, profile, request


def _synthetic() -> Any:
    """tests/reports/synthetic.py: captures built by hand (test modules are not a package)."""
    path = Path(__file__).parents[1] / "reports" / "synthetic.py"
    spec = importlib.util.spec_from_file_location("synthetic_captures", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


synthetic = _synthetic()

pytestmark = pytest.mark.asyncio(loop_scope="function")

EVIL_FUNCTION = "\x1b[31m\x07\x00`tick` [a](http://x.example) <img src=x onerror=alert(1)>"
EVIL_FILE = "a`b[c](d)<img onerror=x>.py"


async def hover_text(client: LanguageClient, uri: str, line: int) -> str:
    hover = await client.text_document_hover_async(
        types.HoverParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            position=types.Position(line=line, character=0),
        )
    )
    assert hover is not None
    return hover.contents.value


async def test_hover_escapes_names_from_the_capture(
    client: LanguageClient, workspace: Path
) -> None:
    script = workspace / EVIL_FILE
    script.write_text("import x\n\n\ndef f():\n    return bytearray(2**21)\n")
    module = ("<module>", str(script), 3, 1)
    evil = (EVIL_FUNCTION, str(script), 5, 4)
    saved = workspace / "evil.msgpack"
    capture_writer.dump(synthetic.build([([module, evil], synthetic.values(peak=2**21))]), saved)
    loaded = await command(client, "memlens.loadCapture", {"path": str(saved)})
    assert loaded["peakText"] == "2.0 MiB"

    text = await hover_text(client, script.as_uri(), 4)
    escaped = re.sub(r"([!-/:-@\[-`{-~])", r"\\\1", str(script))  # all ASCII punctuation
    assert escaped.endswith(r"\/a\`b\[c\]\(d\)\<img onerror\=x\>\.py")
    assert text.splitlines()[-2:] == [
        f"   - `<module>` [{escaped}\\:3]({script.as_uri()}#L3)",
        "   - ``\\x1b[31m\\x07\\x00`tick` [a](http://x.example) <img src=x onerror=alert(1)>`` "
        f"[{escaped}\\:5]({script.as_uri()}#L5)",
    ]
    assert not re.search("[\x00-\x09\x0b-\x1f]", text)

    # Rendered by a CommonMark renderer with raw HTML and bare-link detection on: the names come
    # out as text, and the only links are the two to the frames' lines.
    renderer = MarkdownIt("commonmark", {"html": True, "linkify": True}).enable("linkify")
    renderer.validateLink = lambda url: True  # file: links, as the editor shows them
    html = renderer.render(text)
    assert "<img" not in html
    assert re.findall(r'href="([^"]*)"', html) == [
        f"{script.as_uri()}#L3",
        f"{script.as_uri()}#L5",
    ]
    assert html.count("<code>") == 2 and "&lt;img src=x onerror=alert(1)&gt;</code>" in html


async def test_a_file_outside_the_workspace_needs_confirmation(
    client: LanguageClient, workspace: Path
) -> None:
    outside = workspace.parent / "outside.py"
    outside.write_text("print('ran')\n")
    for uri in (outside.as_uri(), f"{workspace.as_uri()}/../outside.py"):
        with pytest.raises(JsonRpcException) as refused:
            await command(client, "memlens.profile", {"uri": uri})
        assert refused.value.code == types.LSPErrorCodes.RequestFailed
        assert refused.value.message == (
            f"memlens: {outside} is outside the workspace folders; profiling runs it."
            " Profile it only if you trust it (the request must say confirmed: true)."
        )
        assert refused.value.data == {"needsConfirmation": True, "path": str(outside)}
    assert not list(workspace.parent.glob("*.msgpack"))
    result = await command(client, "memlens.profile", {"uri": outside.as_uri(), "confirmed": True})
    assert result["exitCode"] == 0


async def test_a_symlink_out_of_the_workspace_needs_confirmation(
    client: LanguageClient, workspace: Path
) -> None:
    outside = workspace.parent / "elsewhere.py"
    outside.write_text("print('ran')\n")
    (workspace / "link.py").symlink_to(outside)
    with pytest.raises(JsonRpcException) as refused:
        await profile(client, workspace / "link.py")
    assert refused.value.data == {"needsConfirmation": True, "path": str(outside)}


@pytest.mark.parametrize(
    ("extra", "problem"),
    [
        ({"cwd": "/nonexistent/dir"}, "the working directory /nonexistent/dir does not exist"),
        ({"cwd": "/tmp\x00x"}, "the cwd contains a NUL character"),
        ({"args": ["ok", "a\x00b"]}, "argument 2 contains a NUL character"),
        ({"env": {"A": "x\x00y"}}, "the environment variable A contains a NUL character"),
        (
            {"env": {"A=B": "x"}},
            "the environment variable name 'A=B' is not valid (empty, '=' or NUL)",
        ),
    ],
)
async def test_launch_problems_are_named(
    client: LanguageClient, workspace: Path, extra: dict, problem: str
) -> None:
    shown, result = await messages_after(client, profile(client, workspace / "alloc.py", **extra))
    assert result is None
    assert shown == [f"memlens: cannot profile alloc.py: {problem}"]


@pytest.mark.settings({"env": {"PYTHONHOME": "/nonexistent/home"}})
async def test_a_broken_pythonhome_is_named(client: LanguageClient, workspace: Path) -> None:
    shown, result = await messages_after(client, profile(client, workspace / "alloc.py"))
    assert result is None and len(shown) == 1
    assert shown[0].startswith(
        f"memlens: cannot profile alloc.py: the interpreter {sys.executable} could not start"
        " (Fatal Python error: "
    )
    assert shown[0].endswith("; check PYTHONHOME and PYTHONPATH in memlens.env")


async def test_loads_that_never_end_do_not_starve_profiles(
    client: LanguageClient, workspace: Path
) -> None:
    fifos = [workspace / f"fifo{i}.msgpack" for i in range(4)]
    for fifo in fifos:
        os.mkfifo(fifo)
    loads = [
        asyncio.ensure_future(command(client, "memlens.loadCapture", {"path": str(f)}))
        for f in fifos
    ]
    await asyncio.sleep(0.5)
    result = await asyncio.wait_for(profile(client, workspace / "alloc.py"), 60)
    assert result["peakText"] == "40.0 MiB"
    # Unblock a reader that waits for a writer (the hardened reader refuses FIFOs at once).
    for fifo in fifos:
        try:  # a writer that opens and closes: the waiting reader sees an empty file
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        except OSError:  # ENXIO: nobody is reading it
            pass
    answers = await asyncio.wait_for(asyncio.gather(*loads), 20)
    assert answers == [None] * 4  # each refused with a message, none loaded
    texts = [m.message for m in client.messages]
    assert sum(f"memlens: cannot load {f}:" in t for f in fifos for t in texts) == 4


async def test_hostile_values_that_fit_the_schema_get_plain_answers(
    client: LanguageClient, workspace: Path
) -> None:
    main = ("<module>", str(workspace / "main.py"), 10, 1)
    load = ("load", str(workspace / "main.py"), 5, 3)
    saved = workspace / "example.msgpack"
    stacks = [([main, load], synthetic.values(peak=6 * 2**20)), ([main], synthetic.values(2**20))]
    capture_writer.dump(synthetic.build(stacks), saved)
    assert (await command(client, "memlens.loadCapture", {"path": str(saved)}))["peakText"]
    nowhere = f"{workspace.as_uri()}/%00nothing.py"
    hotspots = await request(client, "memlens/hotspots", {"limit": 10**30})
    assert [(h["function"], h["line"]) for h in hotspots["lines"]] == [("load", 4), ("<module>", 9)]
    assert await request(client, "memlens/hotspots", {"limit": -(10**30)}) == {
        "lines": [],
        "leaks": [],
    }
    assert await request(client, "memlens/fileUsage", {"uri": nowhere}) == {"lines": []}
    for line in (-1, 10**30):
        stack = await command(client, "memlens.showStack", {"uri": nowhere, "line": line})
        assert stack == {"stacks": []}
    with pytest.raises(JsonRpcException) as refused:
        await request(client, "memlens/flamegraph", {"metric": "../../etc/passwd"})
    assert refused.value.code == -32602
    assert refused.value.message.startswith(
        "invalid arguments for memlens/flamegraph: unknown metric '../../etc/passwd' (one of "
    )
    shown, loaded = await messages_after(
        client, command(client, "memlens.loadCapture", {"path": str(workspace)})
    )
    assert loaded is None and len(shown) == 1 and "\n" not in shown[0]
    assert shown[0].startswith(f"memlens: cannot load {workspace}: ")
    assert client.messages[-1].type == types.MessageType.Error
