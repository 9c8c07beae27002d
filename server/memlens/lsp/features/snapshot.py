"""Command: memlens.snapshot {label?}: the live run (a profile or an attached process) takes an
object snapshot now.

The server writes the label into CAP.snapshot, next to the run's capture in its private
directory; the program's sampler thread takes the file and schedules the snapshot as a pending
call (native/objects.h `poll_snapshot_request`), which the main thread runs with the GIL held at
its next safe point. The next checkpoint carries it: the command returns when the shown capture
has it (hover and `memlens types --at LABEL` then know it). A main thread that runs no Python
code for SAFE_POINT_S (blocked in a C call, or in one long sleep) gets a clear error, not a hang.
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any

from memlens.lsp import handlers, protocol, views
from memlens.lsp.handlers import Host
from memlens.lsp.session import Session
from memlens.snapshots import Snapshot
from memlens.units import format_bytes

SAFE_POINT_S = 10.0  # the program must take the snapshot (and a checkpoint carry it) by then
POLL_S = 0.1
MAX_LABEL_BYTES = 200  # the tracker reads at most 256


def _live(server: Host) -> tuple[Path, asyncio.Event] | None:
    """The live run's capture path and its end, or None when nothing runs."""
    running = server.running
    if isinstance(running, views.ProfileJob) and not running.done.is_set():
        return running.run.capture, running.done
    job = server.attached  # an attach.AttachJob (features do not import each other)
    output = getattr(getattr(job, "attached", None), "output", None)
    if job is not None and isinstance(output, str) and not job.done.is_set():
        return Path(output), job.done
    return None


def _labelled(session: Session, label: str) -> list[Snapshot]:
    profile = session.profile
    return [s for s in profile.snapshots if s.label == label] if profile is not None else []


def _label(session: Session, asked: str | None) -> str:
    if asked is None:
        taken = {s.label for s in session.profile.snapshots} if session.profile else set()
        number = 1
        while f"editor-{number}" in taken:
            number += 1
        return f"editor-{number}"
    if not asked.strip() or asked == "exit" or "\0" in asked:
        raise protocol.ParamsError("'label' must be a non-empty name other than 'exit'")
    if len(asked.encode()) > MAX_LABEL_BYTES:
        raise protocol.ParamsError(f"'label' must be at most {MAX_LABEL_BYTES} bytes")
    return asked


def _request(capture: Path, label: str) -> Path:
    """Write the request atomically: the tracker never reads half a label."""
    request = capture.with_name(capture.name + ".snapshot")
    pending = request.with_name(request.name + ".tmp")
    pending.write_bytes(label.encode())
    os.replace(pending, request)
    return request


def _result(snapshot: Snapshot) -> protocol.SnapshotResult:
    count = sum(group.count for group in snapshot.objects)
    size = sum(group.bytes for group in snapshot.objects)
    text = (
        f"snapshot {snapshot.label!r} at {snapshot.t_ms / 1000:.2f} s:"
        f" {count:,} objects, {format_bytes(size)}"
    )
    return protocol.SnapshotResult(
        label=snapshot.label, t_ms=snapshot.t_ms, count=count, bytes=size, text=text
    )


async def take_snapshot(server: Host, raw: Any) -> protocol.SnapshotResult | None:
    params = protocol.parse(protocol.SnapshotParams, raw)
    live = _live(server)
    if live is None:
        server.show("no live run to take a snapshot of: profile a script or attach first")
        return None
    capture, ended = live
    label = _label(server.session, params.label)
    before = len(_labelled(server.session, label))
    request = _request(capture, label)
    deadline = time.monotonic() + SAFE_POINT_S
    while time.monotonic() < deadline:
        found = _labelled(server.session, label)
        if len(found) > before:
            return _result(found[-1])
        if ended.is_set() and request.exists():
            request.unlink(missing_ok=True)
            server.show(f"the run ended before it took snapshot {label!r}")
            return None
        await asyncio.sleep(POLL_S)
    server.show(_too_late(request, label))
    return None


def _too_late(request: Path, label: str) -> str:
    """The program did not take the snapshot in time: withdraw the request if it is still
    there, else say that it is queued."""
    try:
        request.unlink()
    except FileNotFoundError:
        return (
            f"snapshot {label!r} did not arrive within {SAFE_POINT_S:.0f} s: the program's"
            " main thread ran no Python code (a long C call or sleep); it is queued and will be"
            " taken when the main thread next runs Python code"
        )
    return (
        f"the program did not take snapshot {label!r} within {SAFE_POINT_S:.0f} s (its tracker"
        " did not pick up the request); the request was withdrawn"
    )


def register(server: Host) -> None:
    handlers.register(server, (protocol.SNAPSHOT, take_snapshot))
