"""Helpers for the attach tests: real gdb, real processes, bounded waits."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent
GROWER = HERE / "grower.py"
TIMEOUT = 60  # seconds: no single step of these tests may hang longer


def can_trace() -> str | None:
    """Why this user cannot trace a child process, or None."""
    if shutil.which("gdb") is None:
        return "gdb is not installed (make gdb, or apt-get install gdb)"
    child = subprocess.Popen(["sleep", "30"])
    try:
        probe = subprocess.run(
            ["gdb", "-nx", "-batch", "-q", "-p", str(child.pid)],
            capture_output=True, text=True, timeout=TIMEOUT,
        )  # fmt: skip
    finally:
        child.kill()
        child.wait()
    if "Operation not permitted" in probe.stderr:
        return "ptrace is not permitted here: " + probe.stderr.strip().splitlines()[-1]
    return None


class Program:
    """A running grower.py: stop() ends it and returns its output and exit code."""

    def __init__(
        self, tmp_path: Path, interpreter: str = sys.executable, user: int | None = None
    ) -> None:
        self.stop_file = tmp_path / "stop"
        self.process = subprocess.Popen(
            [interpreter, str(GROWER), str(self.stop_file)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
            user=user, group=user,
        )  # fmt: skip
        assert self.process.stdout is not None
        assert self.process.stdout.readline() == "ready\n"
        self.pid = self.process.pid

    def running(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> tuple[int, str, str]:
        self.stop_file.touch()
        out, err = self.process.communicate(timeout=TIMEOUT)
        return self.process.returncode, out, err


def memlens(
    *args: str, prefix: tuple[str, ...] = (), **options: object
) -> subprocess.CompletedProcess[str]:
    """Run the memlens command of this environment (after prefix: a wrapper), bounded."""
    return subprocess.run(
        [*prefix, sys.executable, "-m", "memlens", *args],
        capture_output=True, text=True, timeout=TIMEOUT, **options,  # type: ignore[call-overload]
    )  # fmt: skip


def start_memlens(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "memlens", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def interpreter(version: str) -> str | None:
    """Another CPython on this machine (PATH or pyenv), for the version checks."""
    found = shutil.which(f"python{version}")
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    for candidate in sorted(pyenv.glob(f"{version}.*/bin/python{version}")):
        return str(candidate)
    return found


TRACER = """\
import ctypes, os, sys
PTRACE_CONT, PTRACE_SEIZE = 7, 0x4206
libc = ctypes.CDLL(None, use_errno=True)
target = int(sys.argv[1])
if libc.ptrace(PTRACE_SEIZE, target, None, None) != 0:
    sys.exit(f"seize failed: errno {ctypes.get_errno()}")
print("tracing", flush=True)
while True:  # pass every signal on, as a debugger that lets the program run would
    _, status = os.waitpid(target, 0x40000000)  # __WALL
    if os.WIFEXITED(status) or os.WIFSIGNALED(status):
        break
    signal = os.WSTOPSIG(status) if os.WIFSTOPPED(status) else 0
    libc.ptrace(PTRACE_CONT, target, None, signal if signal != 5 else 0)
"""


def start_tracer(pid: int) -> subprocess.Popen[str]:
    """Another process that holds pid under ptrace (as a debugger would) and lets it run."""
    tracer = subprocess.Popen(
        [sys.executable, "-c", TRACER, str(pid)], stdout=subprocess.PIPE, text=True
    )
    assert tracer.stdout is not None
    assert tracer.stdout.readline() == "tracing\n"
    return tracer
