"""Shutting the server down while a script is being profiled leaves nothing running."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from pathlib import Path

import pytest
from lsprotocol import types
from pygls.lsp.client import LanguageClient

pytestmark = pytest.mark.asyncio(loop_scope="function")


async def gone(pid: int) -> bool:
    """Whether the process is gone: killed, and reaped (by init once the server has exited)."""
    for _ in range(100):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        await asyncio.sleep(0.05)
    return False


async def start_profiling_forever(tmp_path: Path) -> tuple[LanguageClient, asyncio.Future, int]:
    """A server subprocess profiling a script that sleeps for two minutes; and the script's pid."""
    pid_file = tmp_path / "pid"
    script = tmp_path / "forever.py"
    script.write_text(
        f"import os, time\nopen({str(pid_file)!r}, 'w').write(str(os.getpid()))\ntime.sleep(120)\n"
    )
    client = LanguageClient("test", "1")
    private = tmp_path / "tmp"  # the server's TMPDIR: its private dir goes here
    private.mkdir()
    env = {**os.environ, "TMPDIR": str(private)}
    await client.start_io(sys.executable, "-m", "memlens.lsp", env=env)
    await client.initialize_async(
        types.InitializeParams(capabilities=types.ClientCapabilities(), root_uri=tmp_path.as_uri())
    )
    client.initialized(types.InitializedParams())
    running = asyncio.ensure_future(
        client.workspace_execute_command_async(
            types.ExecuteCommandParams(
                command="memlens.profile", arguments=[{"uri": script.as_uri()}]
            )
        )
    )
    for _ in range(200):
        if pid_file.exists() and pid_file.read_text():
            break
        await asyncio.sleep(0.05)
    pid = int(pid_file.read_text())
    os.kill(pid, 0)  # running
    return client, running, pid


async def test_shutdown_kills_the_profiled_script(tmp_path: Path) -> None:
    client, running, pid = await start_profiling_forever(tmp_path)
    await client.shutdown_async(None)
    answer = await asyncio.wait_for(running, 5)  # answered before the shutdown completed
    assert answer["cancelled"] is True
    client.exit(None)
    server = client._server
    assert server is not None
    assert await asyncio.wait_for(server.wait(), 10) == 0
    assert await gone(pid)
    await client.stop()


@pytest.mark.parametrize("how", ["disconnect", "sigterm"])
async def test_losing_the_client_kills_the_profiled_script(tmp_path: Path, how: str) -> None:
    client, running, pid = await start_profiling_forever(tmp_path)
    server = client._server
    assert server is not None and server.stdin is not None
    assert [p.name[:8] for p in (tmp_path / "tmp").iterdir()] == ["memlens-"]
    if how == "disconnect":
        server.stdin.close()
    else:
        server.terminate()
    await asyncio.wait_for(server.wait(), 10)
    assert await gone(pid)
    assert list((tmp_path / "tmp").iterdir()) == []  # the private dir went too
    with contextlib.suppress(Exception):  # the request died with the server
        await running
    await client.stop()


async def test_a_killed_server_takes_the_script_with_it(tmp_path: Path) -> None:
    client, running, pid = await start_profiling_forever(tmp_path)
    server = client._server
    assert server is not None
    (private,) = (tmp_path / "tmp").iterdir()
    assert private.name.startswith(f"memlens-lsp-{server.pid}-")
    server.kill()  # SIGKILL: no cleanup runs in the server
    await asyncio.wait_for(server.wait(), 10)
    assert await gone(pid)  # the parent-death signal
    assert private.is_dir()  # left behind ...
    with contextlib.suppress(Exception):
        await running
    await client.stop()

    # ... until the next server starts
    env = {**os.environ, "TMPDIR": str(tmp_path / "tmp")}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "memlens.lsp", env=env,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert process.stdin is not None and process.stderr is not None
    line = await asyncio.wait_for(process.stderr.readline(), 20)
    assert line.decode().strip() == (
        f"memlens: removed {private}, left behind by a server that is gone"
    )
    assert not private.exists()
    for _ in range(100):  # its own directory comes right after
        if list((tmp_path / "tmp").iterdir()):
            break
        await asyncio.sleep(0.05)
    (mine,) = (tmp_path / "tmp").iterdir()
    assert mine.name.startswith(f"memlens-lsp-{process.pid}-")
    process.stdin.close()
    assert await asyncio.wait_for(process.wait(), 10) == 0
    assert list((tmp_path / "tmp").iterdir()) == []
