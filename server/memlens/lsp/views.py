"""Showing a capture in every view, shared by memlens.profile, memlens.loadCapture and attach:
load it (in a thread), put it in the session, publish, and report a live run's progress."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from pathlib import Path

from lsprotocol import types

from memlens import capture
from memlens.capture import CaptureError
from memlens.lsp import runner
from memlens.lsp.annotations import Annotations
from memlens.lsp.handlers import Host
from memlens.lsp.session import Session
from memlens.model import Profile
from memlens.units import format_bytes


class ProfileJob:
    """One memlens.profile in progress."""

    def __init__(self, run: runner.Run, token: str) -> None:
        self.run = run
        self.token = token
        self.cancel_requested = False
        self.end_message = ""  # the progress's last words
        self.done = asyncio.Event()
        self.task = asyncio.current_task()  # the memlens.profile request, awaited at shutdown

    def stop(self) -> None:
        self.cancel_requested = True
        if self.run.pid is not None:
            runner.kill_group(self.run.pid)


def script_of(profile: Profile) -> str | None:
    """The script a capture made by `memlens run` profiled (its code lens goes there)."""
    script = next((a for a in profile.meta.argv if a.endswith(".py")), None)
    return str(Path(script).resolve()) if script and os.path.isabs(script) else script


def peak_text(session: Session) -> str:
    return format_bytes(session.peak_bytes) if session.profile is not None else ""


Remap = Callable[[Profile], Profile]  # a loaded profile as shown (a notebook's: on its cells)


async def load_into(
    server: Host,
    path: Path,
    script: str | None,
    *,
    final: bool,
    chosen: bool = False,
    remap: Remap | None = None,
) -> None:
    """Load a capture (in a thread: big ones take a while) and publish it everywhere. A capture
    the user chose (`chosen`) goes through the bounded loads, our own runs' through the pool."""
    profile = await (
        server.capture_loads.load(str(path)) if chosen else asyncio.to_thread(capture.load, path)
    )
    if remap is not None:
        profile = remap(profile)
    script = script or script_of(profile)
    annotations = await asyncio.to_thread(_annotated, server.session, profile)
    # Shown in one turn of the event loop: diagnostics, then the refresh of lenses and hints,
    # then (memlens/didUpdate, the status bar) the summary. No view runs ahead of another.
    server.session.show(profile, annotations, script, live=not final)
    updated = server.publish(final=final)
    server.refresh_views()
    await updated


def _annotated(session: Session, profile: Profile) -> Annotations:
    """The per-line picture with its inclusive numbers (hints, hover, lenses) built: CPU work
    for a thread, done before the profile is shown so that no view waits on it."""
    annotations = session.annotate(profile)
    annotations.warm()
    return annotations


async def begin_progress(server: Host, token: str, title: str) -> None:
    """A cancellable `$/progress` for a live run (attached or profiled)."""
    try:
        await server.work_done_progress.create_async(token)
    except Exception:  # a client without progress support still gets its annotations
        pass
    server.work_done_progress.begin(
        token, types.WorkDoneProgressBegin(title=title, cancellable=True, message="0 s")
    )


def progress_cancelled(server: Host, token: str) -> bool:
    future = server.work_done_progress.tokens.get(token)
    return future is not None and future.cancelled()


async def show_checkpoint(
    server: Host,
    partial: Path,
    script: str | None,
    token: str,
    elapsed: float,
    remap: Remap | None = None,
) -> None:
    """Show a live run's latest checkpoint, and its live heap in the progress."""
    try:
        await load_into(server, partial, script, final=False, remap=remap)
    except (CaptureError, OSError):
        return  # a checkpoint being rewritten: the next one will do
    profile = server.session.profile
    heap = profile.timeline.heap if profile is not None else None
    live = int(heap[-1]) if heap is not None and len(heap) else 0
    message = f"{elapsed:.0f} s · heap {format_bytes(live)}"
    server.work_done_progress.report(token, types.WorkDoneProgressReport(message=message))


DEBOUNCE_S = 0.3


def publish_soon(server: Host) -> None:
    """Re-publish soon (typing sends many changes; one publish after they stop)."""
    if server.publish_task is not None:
        server.publish_task.cancel()

    async def later() -> None:
        await asyncio.sleep(DEBOUNCE_S)
        await server.publish(final=True)

    server.publish_task = asyncio.get_running_loop().create_task(later())
