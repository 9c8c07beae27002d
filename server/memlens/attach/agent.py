"""The attached side: starts and stops the tracker inside the target, on the attacher's request.

Runs in the target's main thread with the GIL held (see bootstrap.py). One session at a time;
its state lives in this module, which stays imported in the target between attach and detach.
At the target's normal exit the session ends as a detach would, so the capture is complete.
"""

from __future__ import annotations

import atexit
import os
import sys
from typing import Any

from memlens.attach.bootstrap import answer
from memlens.tracker import Tracker

STOPPED = "stopped.json"  # written in the attacher's directory when the session ends


class Session:
    def __init__(self, tracker: Tracker, watch_dir: str) -> None:
        self.tracker = tracker
        self.watch_dir = watch_dir


_session: Session | None = None


def handle(request: dict[str, Any]) -> dict[str, Any]:
    if request["action"] == "start":
        return start(request)
    if request["action"] == "stop":
        return stop()
    return {"ok": False, "error": f"unknown request {request['action']!r}"}


def start_tracker(output: str, python_allocators: bool, checkpoint_interval: float) -> Tracker:
    """Start tracking from inside a pending call.

    The user's frames below this call are the program's own and must stay in the stacks: when
    `Tracker.start` learns to cut its caller's frames from the starting thread, this call must
    ask it not to (the one place that needs it).
    """
    tracker = Tracker(
        output, python_allocators=python_allocators, checkpoint_interval=checkpoint_interval
    )
    tracker.start()
    return tracker


def start(request: dict[str, Any]) -> dict[str, Any]:
    global _session
    from memlens import _native

    if _native.is_tracking():
        if _session is not None:
            how = f"memlens attach, writing {_session.tracker.output}"
        else:
            how = "memlens run or a memlens.Tracker"
        return {"ok": False, "error": f"already tracking ({how})"}
    try:
        tracker = start_tracker(
            request["output"], request["python_allocators"], request["checkpoint_interval"]
        )
    except OSError as error:
        return {"ok": False, "error": f"{request['output']}: cannot write: {error.strerror}"}
    _session = Session(tracker, request["watch_dir"])
    atexit.register(_stop_at_exit)
    return {"ok": True, "output": tracker.output, "python": sys.version.split()[0]}


def stop() -> dict[str, Any]:
    global _session
    from memlens import _native

    if _session is None:
        if _native.is_tracking():
            return {
                "ok": False,
                "error": "not attached: it runs under memlens run or a memlens.Tracker, "
                "which only the program itself stops",
            }
        return {"ok": False, "error": "not attached: memlens is not tracking it"}
    session, _session = _session, None
    atexit.unregister(_stop_at_exit)
    return finish(session, "detached")


def finish(session: Session, how: str) -> dict[str, Any]:
    """Stop the tracker (every hook is removed); tell the attacher, if it still waits."""
    from memlens import _native

    try:
        session.tracker.stop()
        reply = {"ok": True, "output": session.tracker.output, "peak_bytes": _native.last_peak()}
    except OSError as error:
        reply = {"ok": False, "error": f"{session.tracker.output}: cannot write: {error.strerror}"}
    try:
        answer(os.path.join(session.watch_dir, STOPPED), dict(reply, how=how))
    except OSError:
        pass  # the attacher is gone (its directory with it): nobody waits
    return reply


def _stop_at_exit() -> None:
    global _session
    if _session is not None:
        session, _session = _session, None
        finish(session, "exited")
