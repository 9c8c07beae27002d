"""What memlens can know about a process before touching it: from /proc and its ELF files.

Every check here reads files only; a refusal leaves the target exactly as it was.
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass

from memlens.attach.elf import ElfError, ElfSymbols
from memlens.files import reason

CAP_SYS_PTRACE = 19
SUPPORTED = ((3, 10), (3, 11), (3, 12), (3, 13))  # one frame layer each (native/frames_3XX.h)
VERSIONED_NAME = re.compile(r"python(3)\.(\d+)")  # python3.10, libpython3.10.so.1.0


class AttachError(Exception):
    """attach/detach cannot go on; the message says why and what to do. The target is untouched."""


@dataclass(frozen=True)
class Target:
    pid: int
    name: str  # /proc/PID/comm
    uid: int
    gid: int
    python: tuple[int, ...]  # the CPython version the process runs: (3, 12, 1), or (3, 10)


def inspect(pid: int) -> Target:
    """The target's facts, or AttachError: no such process, cannot be traced, not CPython."""
    if pid == os.getpid():
        raise AttachError("memlens cannot attach to itself")
    status = proc_status(pid)
    name = status.get("Name", "?")
    if status.get("State", "").startswith("Z"):
        raise AttachError(f"pid {pid} ({name}) has exited (a zombie its parent has not reaped)")
    denied = ptrace_denied(pid, status)
    if denied:
        raise AttachError(denied)
    uid, gid = int(status["Uid"].split()[1]), int(status["Gid"].split()[1])
    version = python_version(pid, name)
    return Target(pid=pid, name=name, uid=uid, gid=gid, python=version)


def proc_status(pid: int) -> dict[str, str]:
    try:
        with open(f"/proc/{pid}/status") as file:
            lines = file.read().splitlines()
    except FileNotFoundError:
        raise AttachError(f"no process with pid {pid}") from None
    except OSError as error:
        raise AttachError(f"pid {pid}: cannot read /proc/{pid}/status: {reason(error)}") from None
    return {key: value.strip() for key, _, value in (line.partition(":") for line in lines)}


def alive(pid: int) -> bool:
    """Whether pid runs (an exited child of ours stays a zombie until we reap it)."""
    try:
        return not proc_status(pid)["State"].startswith("Z")
    except AttachError:
        return False


def ptrace_scope() -> int | None:
    """kernel.yama.ptrace_scope, or None without the Yama module."""
    try:
        with open("/proc/sys/kernel/yama/ptrace_scope") as file:
            return int(file.read())
    except (OSError, ValueError):
        return None


def may_ptrace_any() -> bool:
    """Whether this process holds CAP_SYS_PTRACE (root outside a restricted container)."""
    effective = proc_status(os.getpid()).get("CapEff", "0")
    return bool(int(effective, 16) >> CAP_SYS_PTRACE & 1)


def ptrace_denied(pid: int, status: dict[str, str]) -> str | None:
    """Why the kernel will certainly refuse to let us trace pid; None if it may allow it."""
    tracer = int(status.get("TracerPid", "0"))
    if tracer:
        return (
            f"pid {pid} is already being traced by pid {tracer} ({comm(tracer)}): "
            "a process has one tracer at a time; detach that debugger first"
        )
    scope, privileged = ptrace_scope(), may_ptrace_any()
    if scope == 3:
        return "kernel.yama.ptrace_scope is 3: no process may be traced until the next reboot"
    if privileged:
        return None
    owner = int(status["Uid"].split()[1])
    if owner != os.geteuid():
        if os.geteuid() == 0:
            return (
                f"permission denied: pid {pid} belongs to uid {owner} and memlens runs as root "
                "without CAP_SYS_PTRACE (a container? give it --cap-add=SYS_PTRACE)"
            )
        return (
            f"permission denied: pid {pid} belongs to uid {owner} and memlens runs as uid "
            f"{os.geteuid()}; attach as that user, or as root"
        )
    if scope == 2:
        return (
            "kernel.yama.ptrace_scope is 2: only root (CAP_SYS_PTRACE) may trace processes; "
            "run as root, or `sysctl kernel.yama.ptrace_scope=1`"
        )
    return None


def ptrace_refused(pid: int) -> str:
    """The likeliest cause when the debugger was refused, for the error message."""
    scope = ptrace_scope()
    if scope == 1 and not may_ptrace_any():
        return (
            f"cannot trace pid {pid}: kernel.yama.ptrace_scope is 1, which lets a process trace "
            "only its own descendants; run as root, or `sysctl kernel.yama.ptrace_scope=0`"
        )
    if os.geteuid() == 0 and not may_ptrace_any():
        return (
            f"cannot trace pid {pid}: memlens runs without CAP_SYS_PTRACE (a container? "
            "give it --cap-add=SYS_PTRACE)"
        )
    where = "" if scope is None else f", kernel.yama.ptrace_scope is {scope}"
    return f"cannot trace pid {pid}: permission denied (uid {os.geteuid()}{where})"


def comm(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/comm") as file:
            return file.read().strip()
    except OSError:
        return "?"


def python_version(pid: int, name: str) -> tuple[int, ...]:
    """The CPython version in pid's executable or its libpython; AttachError if not CPython.

    3.11+ export `Py_Version`, read from the file; before that, the file's name tells
    (python3.10, libpython3.10.so), as Debian and python.org name them.
    """
    named: tuple[int, ...] | None = None
    found_python = False
    for path in python_objects(pid):
        try:
            symbols = ElfSymbols(path)
        except (OSError, ElfError):
            continue
        if "Py_AddPendingCall" not in symbols.symbols:
            continue
        found_python = True
        raw = symbols.read("Py_Version")
        if raw is not None and len(raw) == 8:
            hexversion = int.from_bytes(raw, sys.byteorder)
            return (hexversion >> 24, hexversion >> 16 & 0xFF, hexversion >> 8 & 0xFF)
        match = VERSIONED_NAME.search(os.path.basename(real_path(path)))
        if match and named is None:
            named = (int(match[1]), int(match[2]))
    if named is not None:
        return named
    if found_python:
        raise AttachError(f"pid {pid} ({name}) runs a CPython whose version memlens cannot tell")
    raise AttachError(f"pid {pid} ({name}) is not a CPython process (no libpython, no Py_ symbols)")


def real_path(path: str) -> str:
    """What /proc/PID/exe points at (other paths as they are)."""
    try:
        return os.readlink(path) if os.path.islink(path) else path
    except OSError:
        return path


def python_objects(pid: int) -> list[str]:
    """The executable, then every mapped libpython, as paths readable from here."""
    root = f"/proc/{pid}/root"
    objects = [f"/proc/{pid}/exe"]
    try:
        with open(f"/proc/{pid}/maps") as file:
            maps = file.read().splitlines()
    except PermissionError:
        raise AttachError(ptrace_refused(pid)) from None
    except OSError as error:
        raise AttachError(f"pid {pid}: cannot read its memory map: {reason(error)}") from None
    for line in maps:
        fields = line.split(maxsplit=5)
        path = fields[5].strip() if len(fields) == 6 else ""
        if os.path.basename(path).startswith("libpython") and root + path not in objects:
            objects.append(root + path)
    return objects


def check_version(target: Target) -> None:
    """The target must run the CPython this memlens's native module was built for."""
    running = tuple(sys.version_info[:2])
    wanted = target.python[:2]
    version = ".".join(map(str, target.python))
    if wanted not in SUPPORTED:
        raise AttachError(
            f"pid {target.pid} runs CPython {version}, which memlens does not support "
            "(supported: " + ", ".join(f"{major}.{minor}" for major, minor in SUPPORTED) + ")"
        )
    if wanted != running:
        raise AttachError(
            f"pid {target.pid} runs CPython {version} but this memlens is built for "
            f"{running[0]}.{running[1]}; run `memlens attach` from a memlens installed for "
            f"Python {wanted[0]}.{wanted[1]}"
        )
