"""Commands: memlens.attach {pid, checkpointInterval?} and memlens.detach {}.

memlens.attach starts the tracker in a running CPython process (memlens.attach.client: gdb
schedules the start at a safe point) writing into the server's private directory, and returns
at once: {pid, python, capturePath}. While the process is tracked, each checkpoint is shown as
a running profile's are (views.show_checkpoint: annotations, `memlens/didUpdate`, `$/progress`
with the live heap); cancelling that progress detaches. memlens.detach stops the tracker and
returns the final capture's {peakBytes, peakText, capturePath, how}. When the process ends while
attached, its final capture (or, if it was killed, its last checkpoint) is shown. One attached
process at a time; a server that shuts down or exits detaches it first (Job.stop).
Errors are shown with window/showMessage and the command returns null.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path
from typing import Any

from lsprotocol import types

from memlens.attach import client
from memlens.lsp import handlers, protocol, views
from memlens.lsp.handlers import Host

POLL_S = 0.25
DETACH_TIMEOUT_S = 10.0  # at exit: a detach must not hold the server up for long


class AttachJob:
    """The attached process a server follows."""

    def __init__(self, attached: client.Attached, token: str) -> None:
        self.attached = attached
        self.token = token
        self.result: protocol.DetachResult | None = None  # the final capture, once shown
        self.task: asyncio.Task[None] | None = None  # follows the process
        self.done = asyncio.Event()
        self.stopped = False

    def stop(self) -> None:
        """Detach (blocking, bounded); an ended process needs none."""
        if self.stopped or self.done.is_set():
            return
        self.stopped = True
        try:
            client.detach(self.attached.pid, timeout=DETACH_TIMEOUT_S)
        except client.AttachError:
            pass  # ended meanwhile: nothing is left attached


def _job(server: Host) -> AttachJob | None:
    job = server.attached
    return job if isinstance(job, AttachJob) else None


async def attach(server: Host, raw: Any) -> protocol.AttachResult | None:
    params = protocol.parse(protocol.AttachParams, raw)
    job = _job(server)
    if job is not None:
        server.show(f"already attached to pid {job.attached.pid}; detach first")
        return None
    output = server.private_dir / f"attach-{params.pid}-{uuid.uuid4().hex[:8]}.msgpack"
    try:
        attached = await asyncio.to_thread(
            client.attach,
            params.pid,
            str(output),
            python_allocators=server.session.settings.python_allocators,
            checkpoint_interval=params.checkpoint_interval,
        )
    except client.AttachError as error:
        server.show(f"cannot attach: {error}")
        return None
    job = AttachJob(attached, f"memlens-attach-{uuid.uuid4().hex}")
    server.attached = job
    await views.begin_progress(server, job.token, f"memlens: attached to pid {params.pid}")
    job.task = asyncio.create_task(follow(server, job))
    return protocol.AttachResult(
        pid=params.pid, python=attached.python, capture_path=attached.output
    )


async def detach(server: Host, raw: Any) -> protocol.DetachResult | None:
    protocol.parse(protocol.NoParams, raw)
    job = _job(server)
    if job is None:
        server.show("not attached to any process")
        return None
    try:
        job.stopped = True
        await asyncio.to_thread(client.detach, job.attached.pid)
    except client.AttachError as error:
        server.show(f"cannot detach: {error}")  # the process may have ended meanwhile
    assert job.task is not None
    await job.task
    return job.result


async def follow(server: Host, job: AttachJob) -> None:
    """Show each checkpoint while attached, then the final capture; the progress follows."""
    attached, started, seen = job.attached, time.monotonic(), 0.0
    partial = Path(attached.output + ".partial")
    ending = "detached"
    try:
        while True:
            deadline = time.monotonic() + POLL_S
            stopped = await asyncio.to_thread(client.wait_stopped, attached, deadline)
            if stopped is not None:
                ending = await show_final(server, job, stopped, partial)
                return
            if views.progress_cancelled(server, job.token):  # the user cancelled: detach
                job.stopped = True
                await asyncio.to_thread(client.detach, attached.pid)
                continue
            mtime = partial.stat().st_mtime if partial.exists() else seen
            if mtime != seen:
                seen = mtime
                elapsed = time.monotonic() - started
                await views.show_checkpoint(server, partial, None, job.token, elapsed)
    except (client.AttachError, OSError) as error:
        ending = "failed"
        server.show(f"attached to pid {attached.pid}: {error}")
    except asyncio.CancelledError:  # the server exits (its loop ends): leave nothing attached
        job.stop()
        raise
    finally:
        if server.attached is job:
            server.attached = None
        job.done.set()
        attached.close()
        server.work_done_progress.end(job.token, types.WorkDoneProgressEnd(message=ending))


async def show_final(server: Host, job: AttachJob, stopped: dict[str, Any], partial: Path) -> str:
    """Show the session's final capture (its last checkpoint if the process was killed)."""
    pid = job.attached.pid
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
    await views.load_into(server, found, None, final=True)
    session = server.session
    session.replace_capture(found)
    peak = views.peak_text(session)
    job.result = protocol.DetachResult(
        peak_bytes=session.peak_bytes,
        peak_text=peak,
        capture_path=str(found),
        how=stopped["how"],  # detached, exited or vanished
    )
    return f"peak {peak}"


def register(server: Host) -> None:
    handlers.register(server, (protocol.ATTACH, attach), (protocol.DETACH, detach))
