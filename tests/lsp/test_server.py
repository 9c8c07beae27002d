"""The language server end to end: a real script under the real tracker, exact lines and MiB."""

from __future__ import annotations

import asyncio
import os
import re
from pathlib import Path
from typing import Any

import pytest
from lsprotocol import types
from pytest_lsp import LanguageClient

from memlens import capture
from memlens.lsp.handlers import plain  # pygls hands custom results over as namedtuples

pytestmark = pytest.mark.asyncio(loop_scope="function")


async def request(client: LanguageClient, method: str, params: Any) -> Any:
    return plain(await client.protocol.send_request_async(method, params))


async def command(client: LanguageClient, name: str, argument: Any = None) -> Any:
    arguments = [argument] if argument is not None else None
    return plain(
        await client.workspace_execute_command_async(
            types.ExecuteCommandParams(command=name, arguments=arguments)
        )
    )


async def profile(client: LanguageClient, script: Path, **extra: Any) -> Any:
    return await command(client, "memlens.profile", {"uri": script.as_uri(), **extra})


async def test_profile_annotates_the_lines_that_hold_the_peak(
    client: LanguageClient, workspace: Path
) -> None:
    script = workspace / "alloc.py"
    uri = script.as_uri()
    result = await profile(client, script)
    assert result["exitCode"] == 0 and not result["cancelled"]
    assert result["peakText"] == "40.0 MiB"
    assert Path(result["capturePath"]).is_file()
    # one run, each view checked in its own step
    check_progress(client)
    check_diagnostics(client, script)
    await check_lenses(client, script)
    await check_inlay_hints(client, script)
    await check_hover(client, script)
    await check_hotspots_and_stack(client, uri)
    await check_summary_and_flamegraph(client)


def check_progress(client: LanguageClient) -> None:
    """Progress: begin ... end on one token."""
    (reports,) = [
        r for t, r in client.progress_reports.items() if str(t).startswith("memlens-profile")
    ]
    assert isinstance(reports[0], types.WorkDoneProgressBegin) and reports[0].cancellable
    assert (
        isinstance(reports[-1], types.WorkDoneProgressEnd)
        and reports[-1].message == "peak 40.0 MiB"
    )


def check_diagnostics(client: LanguageClient, script: Path) -> None:
    """The spike is the Warning, the kept buffer Information; the stack in related info. The
    kept buffer is still referenced at exit (by the module's global `result`): no leak."""
    uri = script.as_uri()
    diagnostics = client.diagnostics[uri]
    assert [(d.range.start.line, d.severity, d.code) for d in diagnostics] == [
        (10, types.DiagnosticSeverity.Warning, "peak"),
        (4, types.DiagnosticSeverity.Information, "peak"),
    ]
    assert (
        diagnostics[0].message
        == "charged to this line: 30.0 MiB at peak (2 allocations) · 30.0 MiB allocated"
    )
    assert diagnostics[0].source == "memlens"
    related = [
        (r.location.uri, r.location.range.start.line, r.message)
        for r in diagnostics[1].related_information
    ]
    assert related == [
        (uri, 16, f"<module> ({script}:17)"),
        (uri, 9, f"main ({script}:10)"),
        (uri, 4, f"build ({script}:5)"),
    ]


async def check_lenses(client: LanguageClient, script: Path) -> None:
    """The run on line 0, each function with memory on its def line."""
    uri = script.as_uri()
    lenses = await client.text_document_code_lens_async(
        types.CodeLensParams(text_document=types.TextDocumentIdentifier(uri=uri))
    )
    titles = {(lens.range.start.line, lens.command.title) for lens in lenses}
    assert (3, "▲ 10.0 MiB · Σ 10.0 MiB") in titles
    assert (8, "▲ 40.0 MiB · Σ 40.0 MiB") in titles
    (build,) = [lens.command for lens in lenses if lens.range.start.line == 3]
    assert (build.command, plain(build.arguments)) == (
        "memlens.showPeakStack",
        [{"uri": uri, "line": 3}],
    )
    assert any(
        line == 0 and title.startswith("memlens: peak 40.0 MiB at ") for line, title in titles
    )


async def check_inlay_hints(client: LanguageClient, script: Path) -> None:
    """At the end of the lines, inclusive of callees."""
    uri = script.as_uri()
    client.text_document_did_open(
        types.DidOpenTextDocumentParams(
            text_document=types.TextDocumentItem(
                uri=uri, language_id="python", version=1, text=script.read_text()
            )
        )
    )
    hints = await client.text_document_inlay_hint_async(
        types.InlayHintParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            range=types.Range(
                start=types.Position(line=0, character=0), end=types.Position(line=20, character=0)
            ),
        )
    )
    by_line = {
        h.position.line: (h.position.character, "".join(p.value for p in h.label)) for h in hints
    }
    line5 = script.read_text().splitlines()[4]
    assert by_line[4] == (len(line5), "▲ 10.0 MiB · Σ 10.0 MiB")
    assert by_line[10][1] == "▲ 30.0 MiB · Σ 30.0 MiB"
    assert by_line[16][1] == "▲ 40.0 MiB · Σ 40.0 MiB"
    site = by_line and next(h for h in hints if h.position.line == 16).label[0].location
    assert (site.uri, site.range.start.line) == (uri, 10)  # the biggest stack's allocation site


async def check_hover(client: LanguageClient, script: Path) -> None:
    """The table and the top stacks."""
    uri = script.as_uri()
    hover = await client.text_document_hover_async(
        types.HoverParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            position=types.Position(line=10, character=4),
        )
    )
    table = hover.contents.value.splitlines()
    assert table[2] == "| peak | 30.0 MiB (2 allocations) |"
    assert table[3] == "| allocated | 30.0 MiB (2 allocations) |"
    assert table[4:7] == [
        "| live at exit | 0 B (0 allocations) |",
        "| still referenced at exit | 0 B (0 allocations) |",
        "| lost | 0 B (0 allocations) |",
    ]
    assert table[8] == "| Python objects / native | 100% / 0% |"
    place = re.sub(r"([!-/:-@\[-`{-~])", r"\\\1", f"{script}:11")  # markdown-escaped
    assert f"[{place}]({uri}#L11)" in hover.contents.value


async def check_hotspots_and_stack(client: LanguageClient, uri: str) -> None:
    """Hotspots, biggest first; the kept buffer is the leak."""
    hotspots = await request(client, "memlens/hotspots", {"limit": 5})
    lines = hotspots["lines"]
    assert [(h["line"], h["function"], h["peakBytes"] >> 20) for h in lines[:2]] == [
        (10, "main", 30),
        (4, "build", 10),
    ]
    assert all(h["peakBytes"] < 1024 for h in lines[2:])  # def statements and the like
    assert (
        lines[0]["label"] == "charged: 30.0 MiB at peak · 30.0 MiB allocated"
        and lines[0]["share"] > 0.74
    )
    assert [f["line"] for f in hotspots["lines"][1]["stack"]] == [16, 9, 4]
    # the kept buffer is referenced by a module global at exit: not among the lost lines
    assert [h["line"] for h in hotspots["leaks"] if h["leakBytes"] >= 2**20] == []

    stacks = await command(client, "memlens.showStack", {"uri": uri, "line": 4})
    assert [f["line"] for f in stacks["stacks"][0]["frames"]] == [16, 9, 4]


async def check_summary_and_flamegraph(client: LanguageClient) -> None:
    summary = await request(client, "memlens/summary", {})
    assert summary["peak_bytes"] >> 20 == 40
    page = await request(client, "memlens/flamegraph", {"nonce": "abc123"})
    assert 'nonce="abc123"' in page["html"]
    # a derived measure (measures.py) is a metric the server accepts, by its wire name
    freed = await request(client, "memlens/flamegraph", {"metric": "freed_bytes"})
    assert "memory allocated and freed before the end" in freed["html"]
    assert '"metric":"freed_bytes"' in freed["html"]


async def test_edits_move_annotations_with_their_lines(
    client: LanguageClient, workspace: Path
) -> None:
    script = workspace / "alloc.py"
    uri = script.as_uri()
    text = script.read_text()
    client.text_document_did_open(
        types.DidOpenTextDocumentParams(
            text_document=types.TextDocumentItem(
                uri=uri, language_id="python", version=1, text=text
            )
        )
    )
    await profile(client, script)
    assert [d.range.start.line for d in client.diagnostics[uri]] == [10, 4]

    def change(version: int, start: tuple[int, int], end: tuple[int, int], new: str) -> None:
        client.text_document_did_change(
            types.DidChangeTextDocumentParams(
                text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version),
                content_changes=[
                    types.TextDocumentContentChangePartial(
                        range=types.Range(
                            start=types.Position(line=start[0], character=start[1]),
                            end=types.Position(line=end[0], character=end[1]),
                        ),
                        text=new,
                    )
                ],
            )
        )

    change(2, (0, 0), (0, 0), "import os\nimport sys\n")  # two lines above everything
    await client.wait_for_notification("textDocument/publishDiagnostics")
    assert [d.range.start.line for d in client.diagnostics[uri]] == [12, 6]
    usage = await request(client, "memlens/fileUsage", {"uri": uri})
    assert {u["line"]: u["stale"] for u in usage["lines"]}[6] is False

    change(3, (12, 4), (12, 9), "burst")  # the spike's own line is edited: its numbers go
    await client.wait_for_notification("textDocument/publishDiagnostics")
    assert [d.range.start.line for d in client.diagnostics[uri]] == [6]
    usage = await request(client, "memlens/fileUsage", {"uri": uri})
    stale = {u["line"]: u["stale"] for u in usage["lines"]}
    assert stale[12] is True and stale[6] is False  # placed, but flagged: never shown as valid
    hints = await client.text_document_inlay_hint_async(
        types.InlayHintParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            range=types.Range(
                start=types.Position(line=0, character=0), end=types.Position(line=20, character=0)
            ),
        )
    )
    assert 12 not in {h.position.line for h in hints} and 6 in {h.position.line for h in hints}


async def test_cancel_kills_the_child(client: LanguageClient, workspace: Path) -> None:
    pid_file = workspace / "pid"
    script = workspace / "forever.py"
    script.write_text(
        f"import os, time\nopen({str(pid_file)!r}, 'w').write(str(os.getpid()))\ntime.sleep(120)\n"
    )
    running = asyncio.ensure_future(profile(client, script))
    for _ in range(200):
        if pid_file.exists() and pid_file.read_text():
            break
        await asyncio.sleep(0.05)
    pid = int(pid_file.read_text())
    (token,) = [t for t in client.progress_reports if str(t).startswith("memlens-profile")]
    client.window_work_done_progress_cancel(types.WorkDoneProgressCancelParams(token=token))
    result = await asyncio.wait_for(running, 10)
    assert result["cancelled"] is True
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


async def test_second_profile_cancels_the_first(client: LanguageClient, workspace: Path) -> None:
    slow = workspace / "slow.py"
    slow.write_text("import time\ntime.sleep(120)\n")
    first = asyncio.ensure_future(profile(client, slow))
    await asyncio.sleep(1.0)
    second = await profile(client, workspace / "alloc.py")
    assert second["peakText"] == "40.0 MiB"
    assert (await asyncio.wait_for(first, 10))["cancelled"] is True


async def messages_after(client: LanguageClient, action: Any) -> list[str]:
    before = len(client.messages)
    result = await action
    await asyncio.sleep(0.1)
    await request(client, "memlens/summary", {})  # still serving (raises if the server died)
    return [m.message for m in client.messages[before:]], result


async def test_missing_script_is_named(client: LanguageClient, workspace: Path) -> None:
    shown, result = await messages_after(client, profile(client, workspace / "nope.py"))
    assert shown == [f"memlens: script not found: {workspace / 'nope.py'}"]
    assert result is None


async def test_syntax_error_is_named(client: LanguageClient, workspace: Path) -> None:
    broken = workspace / "broken.py"
    broken.write_text("x = 1\ndef f(:\n")
    shown, result = await messages_after(client, profile(client, broken))
    assert shown == [
        "memlens: cannot profile broken.py: memlens run: error:"
        f" {broken}:2: SyntaxError: invalid syntax"
    ]
    assert result is None


@pytest.mark.parametrize(
    ("uri", "why"),
    [
        ("untitled:Untitled-1", "save the file first"),
        (
            "vscode-notebook-cell:/home/u/nb.ipynb#W0sZmlsZQ%3D%3D",
            "it is a notebook cell: use Profile notebook",
        ),
    ],
)
async def test_unsaved_buffers_ask_to_save(client: LanguageClient, uri: str, why: str) -> None:
    shown, result = await messages_after(client, command(client, "memlens.profile", {"uri": uri}))
    assert shown == [f"memlens: cannot profile {uri}: {why}"]
    assert result is None


@pytest.mark.settings({"python": "/nonexistent/python3"})
async def test_wrong_interpreter_is_named(client: LanguageClient, workspace: Path) -> None:
    shown, _ = await messages_after(client, profile(client, workspace / "alloc.py"))
    assert len(shown) == 1 and "'/nonexistent/python3' was not found" in shown[0]


@pytest.mark.settings({"diagnostics": {"topN": "many"}, "inlayHints": 3})
async def test_bad_settings_fall_back_and_say_so(client: LanguageClient, workspace: Path) -> None:
    await asyncio.sleep(0.2)
    texts = [m.message for m in client.messages]
    assert any("memlens.diagnostics.topN: 'many' is not valid" in t for t in texts)
    assert any("memlens.inlayHints: 3 is not valid" in t for t in texts)
    result = await profile(client, workspace / "alloc.py")
    assert (
        len(client.diagnostics[(workspace / "alloc.py").as_uri()]) == 2 and result["exitCode"] == 0
    )


async def test_unreadable_capture_is_named(client: LanguageClient, workspace: Path) -> None:
    uri = (workspace / "alloc.py").as_uri()
    await profile(client, workspace / "alloc.py")
    bogus = workspace / "bogus.msgpack"
    bogus.write_text('{"not": "a capture"}')
    shown, result = await messages_after(
        client, command(client, "memlens.loadCapture", {"path": str(bogus)})
    )
    assert shown == [f"memlens: cannot load {bogus}: {bogus}: not a memlens capture"]
    assert result is None
    assert [d.range.start.line for d in client.diagnostics[uri]] == [10, 4]  # kept


@pytest.mark.settings({"python": "/usr/bin/python3"})
async def test_interpreter_without_memlens_says_how_to_install(
    client: LanguageClient, workspace: Path
) -> None:
    shown, result = await messages_after(client, profile(client, workspace / "alloc.py"))
    assert result is None
    assert shown == [
        "memlens: cannot profile alloc.py: the interpreter /usr/bin/python3 has no memlens module;"
        " install it there (/usr/bin/python3 -m pip install memlens) or set memlens.python"
    ]


async def test_failing_script_still_shows_its_capture(
    client: LanguageClient, workspace: Path
) -> None:
    script = workspace / "fails.py"
    script.write_text("import sys\n\nkept = bytearray(5 * 2**20)\nsys.exit(3)\n")
    shown, result = await messages_after(client, profile(client, script))
    assert result["exitCode"] == 3 and result["peakText"] == "5.0 MiB"
    assert shown == ["memlens: script exited with code 3"]
    assert client.messages[-1].type == types.MessageType.Warning
    (peak,) = client.diagnostics[script.as_uri()]  # `kept` is a global: referenced, no leak
    assert (peak.range.start.line, peak.message) == (
        2,
        "charged to this line: 5.0 MiB at peak (2 allocations) · 5.0 MiB allocated",
    )


async def test_clear_and_load_capture(client: LanguageClient, workspace: Path) -> None:
    script = workspace / "alloc.py"
    uri = script.as_uri()
    result = await profile(client, script)
    saved = workspace / "saved.msgpack"
    saved.write_bytes(Path(result["capturePath"]).read_bytes())
    updates = client.memlens_updates  # type: ignore[attr-defined]
    last = plain(updates[-1])
    assert last["final"] is True and last["summary"]["peak_bytes"] >> 20 == 40

    assert await command(client, "memlens.clear", {}) is None
    await asyncio.sleep(0.1)
    assert list(client.diagnostics[uri]) == []
    assert await request(client, "memlens/summary", {}) is None
    assert plain(updates[-1]) == {
        "final": True,
        "summary": None,
        "peakText": None,
        "leakText": None,
    }
    assert not Path(result["capturePath"]).exists()  # our private copy went with it

    loaded = await command(client, "memlens.loadCapture", {"path": str(saved)})
    assert loaded["peakText"] == "40.0 MiB"
    assert [d.range.start.line for d in client.diagnostics[uri]] == [10, 4]
    lenses = await client.text_document_code_lens_async(
        types.CodeLensParams(text_document=types.TextDocumentIdentifier(uri=uri))
    )
    assert [lens.command.command for lens in lenses if lens.range.start.line == 0] == [
        "memlens.openFlameGraph",
        "memlens.showPeakStack",
    ]


async def test_checkpoints_are_published_while_the_script_runs(
    client: LanguageClient, workspace: Path
) -> None:
    script = workspace / "live.py"
    script.write_text("import time\n\nbuffer = bytearray(8 * 2**20)\ntime.sleep(2.5)\n")
    result = await profile(client, script)
    assert result["peakText"] == "8.0 MiB"
    updates = [plain(u) for u in client.memlens_updates]  # type: ignore[attr-defined]
    live = [u for u in updates if not u["final"]]
    assert live, "no checkpoint was published while the script slept"
    assert live[0]["summary"]["peak_bytes"] >> 20 == 8
    assert updates[-1]["final"] is True
    (reports,) = [r for t, r in client.progress_reports.items() if str(t).startswith("memlens-")]
    heap = [r.message for r in reports if isinstance(r, types.WorkDoneProgressReport)]
    assert heap and heap[0].endswith("heap 8.0 MiB"), heap


async def test_killed_script_shows_its_last_checkpoint(
    client: LanguageClient, workspace: Path
) -> None:
    script = workspace / "killed.py"
    script.write_text(
        "import os, signal, time\n\nheld = bytearray(6 * 2**20)\ntime.sleep(1.6)\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    shown, result = await messages_after(client, profile(client, script))
    assert result["exitCode"] == -9 and result["peakText"] == "6.0 MiB"
    assert shown == ["memlens: script was killed by signal 9; showing its last checkpoint"]
    (peak,) = client.diagnostics[script.as_uri()]  # a checkpoint has no leaks yet
    assert (peak.range.start.line, peak.message) == (
        2,
        "charged to this line: 6.0 MiB at peak (2 allocations) · 6.0 MiB allocated",
    )


async def test_script_ended_by_sigterm_shows_its_whole_capture(
    client: LanguageClient, workspace: Path
) -> None:
    script = workspace / "terminated.py"
    script.write_text(
        "import os, signal\n\nheld = bytearray(6 * 2**20)\nos.kill(os.getpid(), signal.SIGTERM)\n"
    )
    shown, result = await messages_after(client, profile(client, script))
    assert result["exitCode"] == -15 and result["peakText"] == "6.0 MiB"
    assert shown == ["memlens: script was killed by signal 15; showing its capture"]
    assert capture.load(result["capturePath"]).complete


async def test_configuration_change_turns_hints_off_and_raises_the_threshold(
    client: LanguageClient, workspace: Path
) -> None:
    script = workspace / "alloc.py"
    uri = script.as_uri()
    client.text_document_did_open(
        types.DidOpenTextDocumentParams(
            text_document=types.TextDocumentItem(
                uri=uri, language_id="python", version=1, text=script.read_text()
            )
        )
    )
    await profile(client, script)
    settings = {"memlens": {"inlayHints": False, "diagnostics": {"minMiB": 20}}}
    client.workspace_did_change_configuration(types.DidChangeConfigurationParams(settings=settings))
    await client.wait_for_notification("textDocument/publishDiagnostics")
    assert [(d.range.start.line, d.code) for d in client.diagnostics[uri]] == [(10, "peak")]
    hints = await client.text_document_inlay_hint_async(
        types.InlayHintParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            range=types.Range(
                start=types.Position(line=0, character=0), end=types.Position(line=20, character=0)
            ),
        )
    )
    assert not hints


@pytest.mark.settings({"args": ["--fast"], "env": {"MEMLENS_TEST": "from settings"}})
async def test_settings_reach_the_script(client: LanguageClient, workspace: Path) -> None:
    script = workspace / "echo.py"
    out = workspace / "seen.txt"
    script.write_text(
        f"import os, sys\nopen({str(out)!r}, 'w').write(repr((sys.argv[1:], "
        "os.environ.get('MEMLENS_TEST'), os.getcwd())))\n"
    )
    await profile(client, script)
    assert out.read_text() == repr((["--fast"], "from settings", str(workspace)))
    # the request's own args and cwd win over the settings
    await profile(client, script, args=["a", "b"], cwd=str(workspace.parent))
    assert out.read_text() == repr((["a", "b"], "from settings", str(workspace.parent)))
