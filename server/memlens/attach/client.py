"""The attacher's side: attach the tracker to a running CPython process, and detach it.

    session = attach(pid, "app.msgpack")      # tracking; checkpoints in app.msgpack.partial
    result = detach(pid)                      # the complete capture is written

Every check that can be made from /proc and the process's ELF files is made first (target.py),
so a refusal leaves the process untouched. Then gdb schedules bootstrap.py in the process
(inject.py); the process answers through a file in a private (0700) directory that only it and
the attacher can use. While attached, the process writes `stopped.json` in that directory when
the session ends (detach from anywhere, or the process's exit), which `wait_stopped` watches.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from typing import Any

import memlens
from memlens.attach import inject, registry
from memlens.attach.agent import STOPPED
from memlens.attach.target import AttachError, Target, alive, check_version, inspect

__all__ = ["AttachError", "Attached", "attach", "detach", "wait_stopped"]

REPLY_TIMEOUT = 10.0  # seconds for the main thread to reach a bytecode boundary
POLL = 0.02


@dataclass
class Attached:
    pid: int
    output: str  # absolute: the capture; checkpoints go to output + ".partial"
    python: str  # the target's CPython version
    directory: str  # private; the process writes stopped.json here when the session ends

    def close(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)


def attach(
    pid: int,
    output: str,
    *,
    python_allocators: bool = True,
    checkpoint_interval: float = 1.0,
    timeout: float = REPLY_TIMEOUT,
) -> Attached:
    target = checked_target(pid)
    directory = private_directory(target)
    request = {
        "action": "start",
        "output": os.path.abspath(output),
        "python_allocators": python_allocators,
        "checkpoint_interval": checkpoint_interval,
        "watch_dir": directory,
    }
    try:
        reply = ask(target, directory, request, timeout)
    except BaseException:
        shutil.rmtree(directory, ignore_errors=True)
        raise
    return Attached(pid, reply["output"], reply["python"], directory)


def detach(pid: int, *, timeout: float = REPLY_TIMEOUT) -> dict[str, Any]:
    """Stop the attached tracker in pid; its reply: output, peak_bytes."""
    target = checked_target(pid)
    entry = registry.lookup(pid, target.uid)
    if entry is None:
        raise AttachError(f"pid {pid}: not attached (no memlens attach session)")
    directory = private_directory(target)
    reply_path = os.path.join(directory, "reply.json")
    try:
        if len(reply_path.encode()) >= entry["mailbox_bytes"]:
            raise AttachError(f"the temporary directory's path is too long: {directory}")
        inject.pull_trigger(pid, entry["trigger"], entry["mailbox"], reply_path, directory)
        return await_reply(target, reply_path, timeout, withdraw=None)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def checked_target(pid: int) -> Target:
    target = inspect(pid)
    check_version(target)
    inject.find_debugger()
    return target


def private_directory(target: Target) -> str:
    """A 0700 directory for one exchange, owned by the target's user so it can answer there."""
    directory = tempfile.mkdtemp(prefix=f"memlens-attach-{target.pid}-")
    if os.geteuid() == 0 and target.uid != 0:
        os.chown(directory, target.uid, target.gid)
    return directory


def ask(target: Target, directory: str, request: dict[str, Any], timeout: float) -> dict[str, Any]:
    """Run one request in the target; its reply, or AttachError with the target's reason."""
    entry = registry.lookup(target.pid, target.uid)
    if entry is not None:  # known without disturbing the process
        raise AttachError(
            f"pid {target.pid}: already tracking (memlens attach, writing {entry['output']})"
        )
    request_path = os.path.join(directory, "request.json")
    reply_path = os.path.join(directory, "reply.json")
    request = dict(
        request, python=list(sys.version_info[:2]), package_dirs=package_dirs(), reply=reply_path
    )
    with open(request_path, "w") as file:
        json.dump(request, file)
    inject.schedule(target.pid, bootstrap_code(request_path), directory)
    return await_reply(target, reply_path, timeout, withdraw=request_path)


def await_reply(
    target: Target, reply_path: str, timeout: float, withdraw: str | None
) -> dict[str, Any]:
    """The process's reply; AttachError if it refused, died or did not answer in time.

    withdraw: the request file to remove at the timeout, so that a request the process runs
    later finds nothing to do.
    """
    deadline = time.monotonic() + timeout
    while not os.path.exists(reply_path):
        if not alive(target.pid):
            raise AttachError(f"pid {target.pid} exited before it ran the request")
        if time.monotonic() > deadline:
            if withdraw is not None:
                os.unlink(withdraw)
            raise AttachError(
                f"pid {target.pid} ran no Python code in its main thread for {timeout:g} s "
                "(blocked in a system call or native code?)"
                + ("; nothing was done" if withdraw else "; it stops tracking when it does")
            )
        time.sleep(POLL)
    with open(reply_path) as file:
        reply: dict[str, Any] = json.load(file)
    if not reply.get("ok"):
        raise AttachError(f"pid {target.pid}: {reply.get('error', 'no reason given')}")
    return reply


def bootstrap_code(request_path: str) -> str:
    """The text the process runs: bootstrap.py in a fresh namespace; `__main__` gains no names.

    After a first attach the process has bootstrap.py imported (as part of memlens): reuse it.
    """
    boot = os.path.join(os.path.dirname(__file__), "bootstrap.py")
    inner = (
        "import sys\n"
        "loaded = sys.modules.get('memlens.attach.bootstrap')\n"
        "if loaded is not None:\n"
        f"    loaded.main({request_path!r})\n"
        "else:\n"
        f"    with open({boot!r}) as file:\n"
        "        source = file.read()\n"
        f"    exec(compile(source, {boot!r}, 'exec'), "
        f"{{'__name__': '__memlens_attach__', 'REQUEST': {request_path!r}}})\n"
    )
    # Nothing may escape: an exception from a pending call would surface in the program.
    return f"try:\n    exec({inner!r}, {{}})\nexcept Exception:\n    pass\n"


def package_dirs() -> list[str]:
    """Where this memlens lives: its sources, and its native module (apart in editable installs)."""
    folders = [os.path.dirname(os.path.abspath(memlens.__file__))]
    spec = importlib.util.find_spec("memlens._native")
    if spec is not None and spec.origin:
        native = os.path.dirname(os.path.abspath(spec.origin))
        if native not in folders:
            folders.append(native)
    return folders


def wait_stopped(session: Attached, deadline: float | None = None) -> dict[str, Any] | None:
    """Block until the session ends (detach from anywhere, or the process exits) or deadline.

    The stop's reply (with `how`: detached or exited), {"how": "vanished"} if the process died
    without a word (killed: its last checkpoint is all there is), or None at the deadline.
    """
    stopped = os.path.join(session.directory, STOPPED)
    while deadline is None or time.monotonic() < deadline:
        if os.path.exists(stopped):
            with open(stopped) as file:
                result: dict[str, Any] = json.load(file)
            return result
        if not alive(session.pid):
            if os.path.exists(stopped):
                continue
            return {"ok": False, "how": "vanished", "output": session.output}
        time.sleep(0.05)
    return None
