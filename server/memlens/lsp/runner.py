"""Runs one script under `memlens run` in a child process and watches it.

The child gets its own process group (so cancelling kills everything it started), no shell, and
a private capture path; its output is streamed line by line, and its checkpoints
(`CAP.partial`, rewritten about once a second) are reported as they appear.

The child dies with the server: it asks the kernel for SIGKILL when its parent dies
(PR_SET_PDEATHSIG, set between fork and exec by a preexec function that only calls prctl and
getppid, both resolved before the fork), so a server killed with SIGKILL leaves no script running.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from memlens.files import reason


@dataclass
class Run:
    interpreter: str
    script: str
    args: list[str]
    capture: Path
    cwd: str
    env: dict[str, str]
    python_allocators: bool = True
    follow_fork: bool = False
    temporary_allocation_threshold: int = 1
    stderr_tail: list[str] = field(default_factory=list)
    pid: int | None = None

    def command(self) -> list[str]:
        flags = [] if self.python_allocators else ["--no-python-allocators"]
        flags += ["--follow-fork"] if self.follow_fork else []
        flags += ["--temporary-allocation-threshold", str(self.temporary_allocation_threshold)]
        return [
            self.interpreter, "-m", "memlens", "run", "-o", str(self.capture),
            "--checkpoint-interval", "1", *flags, self.script, *self.args,
        ]  # fmt: skip


class LaunchError(Exception):
    """The interpreter could not be started at all."""


def launch_problem(run: Run) -> str | None:
    """What would stop the run from starting, in the user's words; None if nothing."""
    if "\0" in run.interpreter:
        return "the interpreter path contains a NUL character"
    if "\0" in run.cwd:
        return "the cwd contains a NUL character"
    for number, arg in enumerate([run.script, *run.args]):
        if "\0" in arg:
            return (
                f"argument {number} contains a NUL character"
                if number
                else ("the script path contains a NUL character")
            )
    for name, value in run.env.items():
        if not name or "=" in name or "\0" in name:
            return f"the environment variable name {name!r} is not valid (empty, '=' or NUL)"
        if "\0" in value:
            return f"the environment variable {name} contains a NUL character"
    if not os.path.exists(run.cwd):
        return f"the working directory {run.cwd} does not exist"
    if not os.path.isdir(run.cwd):
        return f"the working directory {run.cwd} is not a directory"
    return None


PR_SET_PDEATHSIG = 1


def _die_with_parent() -> Callable[[], None] | None:
    """The preexec function that ties the child's life to this process (None off Linux)."""
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()

    def preexec() -> None:
        prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL))
        if os.getppid() != parent:  # the server died before the request took effect
            os._exit(1)

    return preexec


async def _start(run: Run) -> asyncio.subprocess.Process:
    """The child in its own process group, or a LaunchError saying why it cannot start."""
    problem = launch_problem(run)
    if problem is not None:
        raise LaunchError(problem)
    try:
        return await asyncio.create_subprocess_exec(
            *run.command(),
            cwd=run.cwd,
            env=run.env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,
            preexec_fn=_die_with_parent(),
        )
    except FileNotFoundError as error:
        if error.filename == run.cwd:
            raise LaunchError(f"the working directory {run.cwd} does not exist") from None
        raise LaunchError(f"the interpreter {run.interpreter!r} was not found") from None
    except PermissionError:
        raise LaunchError(f"the interpreter {run.interpreter!r} cannot be executed") from None
    except OSError as error:
        raise LaunchError(f"cannot start {run.interpreter!r}: {reason(error)}") from None


async def execute(
    run: Run,
    on_output: Callable[[str, bool], None],
    on_checkpoint: Callable[[Path], Awaitable[None]],
    cancelled: Callable[[], bool],
) -> int | None:
    """Run to the end; the exit code, or None when cancelled (the process group is killed)."""
    process = await _start(run)
    run.pid = process.pid

    async def pump(stream: asyncio.StreamReader | None, is_error: bool) -> None:
        assert stream is not None
        while line := await stream.readline():
            text = line.decode(errors="replace").rstrip("\n")
            if is_error:
                run.stderr_tail = (run.stderr_tail + [text])[-20:]
            on_output(text, is_error)

    pumps = [
        asyncio.create_task(pump(process.stdout, False)),
        asyncio.create_task(pump(process.stderr, True)),
    ]
    partial = run.capture.with_name(run.capture.name + ".partial")
    seen: float = 0.0
    try:
        while True:
            try:
                await asyncio.wait_for(asyncio.shield(process.wait()), timeout=0.25)
                break
            except asyncio.TimeoutError:  # 3.10: not the builtin TimeoutError
                pass
            if cancelled():
                kill_group(process.pid)
                await process.wait()
                return None
            try:
                mtime = partial.stat().st_mtime
            except OSError:
                continue
            if mtime != seen:
                seen = mtime
                await on_checkpoint(partial)
    except asyncio.CancelledError:
        kill_group(process.pid)
        raise
    finally:
        if process.returncode is None:
            kill_group(process.pid)
        await asyncio.gather(*pumps, return_exceptions=True)
    return process.returncode


def kill_group(pid: int) -> None:
    """Kill the child and everything it started (it leads its own session)."""
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
