"""Commands: memlens.attach {pid, checkpointInterval?} and memlens.detach {}.

memlens.attach starts the tracker in a running CPython process (memlens.attach.client: gdb
schedules the start at a safe point) writing into the server's private directory, and returns
at once: {pid, python, capturePath}. While the process is tracked, each checkpoint is shown as
a running profile's are (annotations, `memlens/didUpdate`, `$/progress` with the live heap);
cancelling that progress detaches. memlens.detach stops the tracker and returns the final
capture's {peakBytes, peakText, capturePath}. When the process ends while attached, its final
capture (or, if it was killed, its last checkpoint) is shown. One attached process at a time.
Errors are shown with window/showMessage and the command returns null.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
from lsprotocol import types

from memlens.attach import client
from memlens.capture import CaptureError
from memlens.lsp import protocol
from memlens.lsp.features.commands import first_argument, load_into
from memlens.units import format_bytes

if TYPE_CHECKING:
    from memlens.lsp.server import MemlensServer

ATTACH = "memlens.attach"
DETACH = "memlens.detach"
POLL_S = 0.25


@attrs.define
class AttachParams:
    pid: int
    checkpointInterval: float = 1.0  # noqa: N815 (the wire name)


class AttachJob:
    """The attached process a server follows."""

    def __init__(self, session: client.Attached, token: str) -> None:
        self.session = session
        self.token = token
        self.result: dict[str, Any] | None = None  # the final capture's summary, once shown
        self.watcher: asyncio.Task[None] | None = None


_jobs: dict[int, AttachJob] = {}  # id(server) -> what it follows


async def attach(server: MemlensServer, raw: Any) -> dict[str, Any] | None:
    params = protocol.parse(AttachParams, raw)
    if id(server) in _jobs:
        server.show(f"already attached to pid {_jobs[id(server)].session.pid}; detach first")
        return None
    output = server.private_dir / f"attach-{params.pid}-{uuid.uuid4().hex[:8]}.msgpack"
    try:
        session = await asyncio.to_thread(
            client.attach,
            params.pid,
            str(output),
            python_allocators=server.settings.python_allocators,
            checkpoint_interval=params.checkpointInterval,
        )
    except client.AttachError as error:
        server.show(f"cannot attach: {error}")
        return None
    job = AttachJob(session, f"memlens-attach-{uuid.uuid4().hex}")
    _jobs[id(server)] = job
    try:
        await server.work_done_progress.create_async(job.token)
    except Exception:  # a client without progress support still gets its annotations
        pass
    server.work_done_progress.begin(
        job.token,
        types.WorkDoneProgressBegin(
            title=f"memlens: attached to pid {params.pid}", cancellable=True, message="0 s"
        ),
    )
    job.watcher = asyncio.create_task(follow(server, job))
    return {"pid": params.pid, "python": session.python, "capturePath": session.output}


async def detach(server: MemlensServer, raw: Any) -> dict[str, Any] | None:
    job = _jobs.get(id(server))
    if job is None:
        server.show("not attached to any process")
        return None
    try:
        await asyncio.to_thread(client.detach, job.session.pid)
    except client.AttachError as error:
        server.show(f"cannot detach: {error}")  # the process may have ended meanwhile
    assert job.watcher is not None
    await job.watcher
    return job.result


async def follow(server: MemlensServer, job: AttachJob) -> None:
    """Show each checkpoint while attached, then the final capture; the progress follows."""
    session, started, seen = job.session, time.monotonic(), 0.0
    partial = Path(session.output + ".partial")
    ending = "detached"
    try:
        while True:
            deadline = time.monotonic() + POLL_S
            stopped = await asyncio.to_thread(client.wait_stopped, session, deadline)
            if stopped is not None:
                ending = await show_final(server, job, stopped, partial)
                return
            future = server.work_done_progress.tokens.get(job.token)
            if future is not None and future.cancelled():  # the user cancelled: detach
                await asyncio.to_thread(client.detach, session.pid)
                continue
            mtime = partial.stat().st_mtime if partial.exists() else seen
            if mtime != seen:
                seen = mtime
                await show_checkpoint(server, job, partial, time.monotonic() - started)
    except (client.AttachError, OSError) as error:
        ending = "failed"
        server.show(f"attached to pid {session.pid}: {error}")
    finally:
        _jobs.pop(id(server), None)
        session.close()
        server.work_done_progress.end(job.token, types.WorkDoneProgressEnd(message=ending))


async def show_checkpoint(
    server: MemlensServer, job: AttachJob, partial: Path, elapsed: float
) -> None:
    try:
        await load_into(server, partial, None, final=False)
    except (CaptureError, OSError):
        return  # a checkpoint being rewritten: the next one will do
    heap = server.profile.timeline.heap if server.profile is not None else None
    live = int(heap[-1]) if heap is not None and len(heap) else 0
    message = f"{elapsed:.0f} s · heap {format_bytes(live)}"
    server.work_done_progress.report(job.token, types.WorkDoneProgressReport(message=message))


async def show_final(
    server: MemlensServer, job: AttachJob, stopped: dict[str, Any], partial: Path
) -> str:
    """Show the session's final capture (its last checkpoint if the process was killed)."""
    pid = job.session.pid
    if stopped.get("ok"):
        found = Path(stopped["output"])
    elif partial.exists():
        found = partial.replace(partial.with_suffix(""))  # all there is: keep it as the capture
        server.show(
            f"pid {pid} ended while attached (killed?); showing its last checkpoint",
            types.MessageType.Warning,
        )
    else:
        server.show(f"pid {pid}: {stopped.get('error', 'ended without a capture')}")
        return "failed"
    await load_into(server, found, None, final=True)
    server.replace_capture(found)
    assert server.profile is not None
    job.result = {
        "peakBytes": server.profile.totals.peak_bytes,
        "peakText": server.peak_text(),
        "capturePath": str(found),
        "how": stopped["how"],  # detached, exited or vanished
    }
    return f"peak {server.peak_text()}"


def register(server: MemlensServer) -> None:
    async def guarded_attach(ls: Any, *args: Any) -> Any:  # no forward refs: pygls reads hints
        try:
            return await attach(ls, first_argument(args))
        except protocol.ParamsError as error:
            ls.show(f"{error}")
            return None

    async def run_detach(ls: Any, *args: Any) -> Any:
        return await detach(ls, first_argument(args))

    server.command(ATTACH)(guarded_attach)
    server.command(DETACH)(run_detach)
