"""The attached side: starts and stops the tracker inside the target, on the attacher's request.

Runs in the target's main thread with the GIL held (see bootstrap.py). One session at a time;
its state lives in this module, which stays imported in the target between attach and detach.
At the target's normal exit the session ends as a detach would, so the capture is complete.

The stop does not come as source text like the start: compiling text allocates (about 30 KiB)
before any new frame exists, and the tracker would charge that to the line the program was
running. Instead `memlens detach` has CPython call `PyObject_IsTrue(trigger)`, which allocates
nothing on its way into `StopTrigger.__bool__`; the registry (registry.py) tells it where the
trigger and its mailbox are.
"""

from __future__ import annotations

import array
import atexit
import os
import sys
from typing import Any

from memlens.attach import registry
from memlens.attach.bootstrap import answer
from memlens.files import reason
from memlens.tracker import Tracker

MAILBOX_BYTES = 4096  # the detacher writes its reply path here, NUL-terminated

STOPPED = "stopped.json"  # written in the attacher's directory when the session ends


class Session:
    def __init__(self, tracker: Tracker, watch_dir: str, entry: str) -> None:
        self.tracker = tracker
        self.watch_dir = watch_dir
        self.entry = entry  # its registry file
        self.pid = os.getpid()  # a forked child inherits the session, but does not own it


class StopTrigger:
    """What `memlens detach` has CPython call, as `PyObject_IsTrue(trigger)` in a pending call.

    Stops tracking first, then answers at the path the detacher wrote into the mailbox. Returns
    False: a pending call must return 0, and nothing may be raised into the program. Made once
    and never freed, since a detacher may hold its address a little after the session ends.
    """

    def __init__(self) -> None:
        self.mailbox = array.array("B", bytes(MAILBOX_BYTES))

    def __bool__(self) -> bool:
        try:
            reply = stop()
            path = self.mailbox.tobytes().partition(b"\0")[0].decode()
            self.mailbox[0] = 0
            if path:
                answer(path, reply)
        except Exception:
            pass
        return False


_session: Session | None = None
_trigger: StopTrigger | None = None


def handle(request: dict[str, Any]) -> dict[str, Any]:
    if request["action"] == "start":
        return start(request)
    return {"ok": False, "error": f"unknown request {request['action']!r}"}


def start_tracker(output: str, python_allocators: bool, checkpoint_interval: float) -> Tracker:
    """Start tracking from inside a pending call.

    The user's frames below this call are the program's own and must stay in the stacks, and
    they go on after this call returns: `keep_callers` (the one place that needs it).
    """
    tracker = Tracker(
        output,
        python_allocators=python_allocators,
        checkpoint_interval=checkpoint_interval,
        keep_callers=True,
    )
    tracker.start()
    return tracker


def start(request: dict[str, Any]) -> dict[str, Any]:
    global _session
    from memlens import _native

    global _trigger
    if _native.is_tracking():
        if _session is not None:
            how = f"memlens attach, writing {_session.tracker.output}"
        else:
            how = "memlens run or a memlens.Tracker"
        return {"ok": False, "error": f"already tracking ({how})"}
    # Everything the session needs is made before tracking starts: none of it is counted.
    _trigger = _trigger or StopTrigger()
    # Called once now, where it does nothing (no session yet): on 3.10 a function's first call
    # allocates its frame object, which CPython keeps for the next one. Called first by the
    # detach, under the program's frame, it charged 521 bytes to the line the program was on.
    bool(_trigger)
    try:
        entry = registry.publish(
            {
                "trigger": id(_trigger),
                "mailbox": _trigger.mailbox.buffer_info()[0],
                "mailbox_bytes": MAILBOX_BYTES,
                "output": request["output"],
            }
        )
    except OSError as error:
        return {"ok": False, "error": f"cannot register the session: {error}"}
    try:
        tracker = start_tracker(
            request["output"], request["python_allocators"], request["checkpoint_interval"]
        )
    except OSError as error:
        os.unlink(entry)
        return {"ok": False, "error": f"{request['output']}: cannot write: {reason(error)}"}
    _session = Session(tracker, request["watch_dir"], entry)
    atexit.register(_stop_at_exit)
    return {"ok": True, "output": tracker.output, "python": sys.version.split()[0]}


def stop() -> dict[str, Any]:
    global _session
    if _session is None:  # a detacher that read the registry just before the session ended
        return {"ok": False, "error": "not attached: the session has just ended"}
    session, _session = _session, None
    atexit.unregister(_stop_at_exit)
    return finish(session, "detached")


def finish(session: Session, how: str) -> dict[str, Any]:
    """Stop the tracker (every hook is removed); tell the attacher, if it still waits."""
    from memlens import _native

    try:
        os.unlink(session.entry)
    except OSError:
        pass
    try:
        session.tracker.stop()
        reply = {"ok": True, "output": session.tracker.output, "peak_bytes": _native.last_peak()}
    except OSError as error:
        reply = {"ok": False, "error": f"{session.tracker.output}: cannot write: {reason(error)}"}
    try:
        answer(os.path.join(session.watch_dir, STOPPED), dict(reply, how=how))
    except OSError:
        pass  # the attacher is gone (its directory with it): nobody waits
    return reply


def _stop_at_exit() -> None:
    global _session
    if _session is not None and _session.pid != os.getpid():
        _session = None  # a forked child: tracking stopped at the fork; the parent's goes on
    if _session is not None:
        session, _session = _session, None
        finish(session, "exited")
