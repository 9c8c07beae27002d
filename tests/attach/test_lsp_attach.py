"""memlens.attach / memlens.detach in the real language server over stdio, on a real process."""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import pytest
import pytest_lsp
from attach_helpers import GROWER, Program
from attach_helpers import memlens as memlens_command
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities
from test_attach import ALLOCATION_LINE, blocks_at_line, tally

import memlens
from memlens import capture
from memlens.lsp.handlers import plain

pytestmark = pytest.mark.asyncio(loop_scope="function")


@pytest_lsp.fixture(config=ClientServerConfig(server_command=[sys.executable, "-m", "memlens.lsp"]))
async def client(lsp_client: LanguageClient):
    updates: list[Any] = []
    lsp_client.memlens_updates = updates  # type: ignore[attr-defined]

    @lsp_client.feature("memlens/didUpdate")
    def did_update(_client: LanguageClient, params: object) -> None:
        updates.append(plain(params))

    @lsp_client.feature(types.WORKSPACE_CODE_LENS_REFRESH)
    def code_lens_refresh(_client: LanguageClient, params: None) -> None:
        return None

    @lsp_client.feature(types.WORKSPACE_INLAY_HINT_REFRESH)
    def inlay_hint_refresh(_client: LanguageClient, params: None) -> None:
        return None

    root = GROWER.parent
    await lsp_client.initialize_session(
        types.InitializeParams(
            capabilities=client_capabilities("visual-studio-code"),
            root_uri=root.as_uri(),
            workspace_folders=[types.WorkspaceFolder(uri=root.as_uri(), name="attach")],
            initialization_options={"memlens": {}},
        )
    )
    yield
    await lsp_client.shutdown_session()


async def command(client: LanguageClient, name: str, argument: Any = None) -> Any:
    arguments = [argument] if argument is not None else None
    return plain(
        await client.workspace_execute_command_async(
            types.ExecuteCommandParams(command=name, arguments=arguments)
        )
    )


async def test_attach_shows_checkpoints_live_then_detach_shows_the_capture(
    client: LanguageClient, program: Program
) -> None:
    attached = await command(client, "memlens.attach", {"pid": program.pid})
    assert attached["pid"] == program.pid
    assert attached["capturePath"].endswith(".msgpack")
    updates: list[Any] = client.memlens_updates  # type: ignore[attr-defined]
    for _ in range(200):  # a live checkpoint within 10 s
        if updates:
            break
        await asyncio.sleep(0.05)
    assert updates and updates[0]["final"] is False
    line = ALLOCATION_LINE - 1  # 0-based in the protocol
    published = client.diagnostics[GROWER.as_uri()]
    assert any(d.range.start.line == line for d in published), published

    result = await command(client, "memlens.detach", {})
    assert result["how"] == "detached"
    assert updates[-1]["final"] is True
    code, out, _ = program.stop()
    assert code == 0
    sure, straddling = tally(out)
    profile = memlens.load(result["capturePath"])
    assert result["peakBytes"] == profile.totals.peak_bytes
    assert sure <= blocks_at_line(profile) <= sure + straddling

    (reports,) = [r for t, r in client.progress_reports.items() if str(t).startswith("memlens-")]
    heap = [r.message for r in reports if isinstance(r, types.WorkDoneProgressReport)]
    assert heap and " s · heap " in heap[0] and heap[0].endswith(" MiB"), heap
    assert isinstance(reports[-1], types.WorkDoneProgressEnd)
    assert reports[-1].message == f"peak {result['peakText']}"

    assert await command(client, "memlens.detach", {}) is None
    assert client.messages[-1].message == "memlens: not attached to any process"


async def test_attach_errors_are_shown(client: LanguageClient, traceable: None) -> None:
    with open("/proc/sys/kernel/pid_max") as file:
        beyond = int(file.read()) + 1
    assert await command(client, "memlens.attach", {"pid": beyond}) is None
    assert client.messages[-1].message == f"memlens: cannot attach: no process with pid {beyond}"


@pytest.mark.parametrize("how", ["shutdown", "exit"])
async def test_a_server_that_stops_detaches_first(program: Program, how: str) -> None:
    """A server that shuts down (or just exits) while attached leaves the process untracked."""
    from pygls.lsp.client import LanguageClient as PlainClient

    server = PlainClient("test", "1")
    await server.start_io(sys.executable, "-m", "memlens.lsp")
    await server.initialize_async(
        types.InitializeParams(capabilities=types.ClientCapabilities(), root_uri=None)
    )
    server.initialized(types.InitializedParams())
    attached = plain(
        await server.workspace_execute_command_async(
            types.ExecuteCommandParams(command="memlens.attach", arguments=[{"pid": program.pid}])
        )
    )
    assert attached["pid"] == program.pid
    if how == "shutdown":
        await server.shutdown_async(None)
    server.exit(None)
    assert server._server is not None
    assert await asyncio.wait_for(server._server.wait(), 60) == (0 if how == "shutdown" else 1)
    await server.stop()
    again = memlens_command("detach", str(program.pid))
    assert again.returncode != 0
    assert f"pid {program.pid}: not attached" in again.stderr
    code, _, _ = program.stop()
    assert code == 0


async def test_a_snapshot_on_request_while_attached(
    client: LanguageClient, program: Program
) -> None:
    """The attached agent runs the same tracker: memlens.snapshot works the same way."""
    await command(client, "memlens.attach", {"pid": program.pid})
    taken = await command(client, "memlens.snapshot", {"label": "attached"})
    assert taken["label"] == "attached"
    result = await command(client, "memlens.detach", {})
    profile = capture.load(result["capturePath"])
    (snapshot,) = [s for s in profile.snapshots if s.label == "attached"]
    # the 1 MiB blocks made since the attach, at the allocation line, each object and buffer
    at_line = [
        g
        for g in snapshot.objects
        if g.type == "bytearray"
        and g.stack >= 0
        and profile.frames_of(g.stack)[-1].line == ALLOCATION_LINE
    ]
    assert sum(g.count for g in at_line) >= 1
    size = sys.getsizeof(bytearray(1 << 20))
    assert sum(g.bytes for g in at_line) == size * sum(g.count for g in at_line)
