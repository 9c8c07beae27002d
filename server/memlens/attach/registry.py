"""Where an attached process says how to detach it: one small JSON file per process.

The agent (inside the target) writes `<pid>.json` when tracking starts and removes it when
tracking stops; any `memlens detach PID` of the same user (or root) reads it. It holds the
addresses of the agent's stop trigger and mailbox (see agent.py), and the process's start time,
so that a file left by a killed process is never taken for a new process with the same pid.
The directory is private to the user: /run/user/UID/memlens-attach, else /tmp/memlens-attach-UID,
mode 0700, refused if anyone else owns it or may write to it.
"""

from __future__ import annotations

import json
import os
import stat
from typing import Any

from memlens.files import write_atomically


def directory(uid: int) -> str:
    runtime = f"/run/user/{uid}"
    if os.path.isdir(runtime) and os.stat(runtime).st_uid == uid:
        return os.path.join(runtime, "memlens-attach")
    return f"/tmp/memlens-attach-{uid}"


def start_time(pid: int) -> int:
    """The process's start time in clock ticks since boot (field 22 of /proc/PID/stat)."""
    with open(f"/proc/{pid}/stat") as file:
        after_name = file.read().rpartition(")")[2].split()
    return int(after_name[19])


def safe(folder: str, uid: int) -> bool:
    info = os.lstat(folder)
    return stat.S_ISDIR(info.st_mode) and info.st_uid == uid and not info.st_mode & 0o077


def publish(entry: dict[str, Any]) -> str:
    """Write this process's entry (in the target); its path. OSError if the dir is unsafe."""
    uid, pid = os.geteuid(), os.getpid()
    folder = directory(uid)
    os.makedirs(folder, mode=0o700, exist_ok=True)
    if not safe(folder, uid):
        raise PermissionError(f"{folder} is not a private directory of uid {uid}")
    path = os.path.join(folder, f"{pid}.json")
    write_atomically(path, json.dumps(dict(entry, pid=pid, start_time=start_time(pid))).encode())
    return path


def lookup(pid: int, uid: int) -> dict[str, Any] | None:
    """The entry of a process that is attached now, or None."""
    folder = directory(uid)
    path = os.path.join(folder, f"{pid}.json")
    try:
        if not safe(folder, uid):
            return None
        with open(path) as file:
            entry: dict[str, Any] = json.load(file)
        if entry.get("start_time") != start_time(pid):
            return None  # left by an earlier process with the same pid
    except (OSError, ValueError, AttributeError):
        return None
    # The addresses go into a gdb script, which root may run: numbers only, nothing else.
    numbers = [entry.get(key) for key in ("trigger", "mailbox", "mailbox_bytes")]
    if not all(type(number) is int and number > 0 for number in numbers):
        return None
    return entry
