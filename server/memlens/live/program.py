"""`memlens run --live`: the program runs in a child `memlens run` (so the view, Textual and
numpy never load into it), its stdout/stderr piped to the view, while the view follows the
child's checkpoints.

Quitting the view stops the program: SIGINT to its process group (the program sees a
KeyboardInterrupt, as with Ctrl-C, and memlens writes the complete capture), then SIGKILL after
STOP_GRACE_S (the last checkpoint, CAP.partial, stays).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import Callable

CHECKPOINT_INTERVAL = "0.5"  # the view updates about twice a second
STOP_GRACE_S = 2.0

OutputSink = Callable[[str, str], None]  # (stream name, line without its newline)


def child_command(argv: list[str], output: str) -> list[str]:
    """`python -m memlens run` with the user's options, minus --live. Theirs come after ours,
    so their own --checkpoint-interval or -o wins."""
    rest = list(argv)
    rest.remove("--live")  # the first one: options come before the program
    return [
        sys.executable,
        "-m",
        "memlens",
        "run",
        "--checkpoint-interval",
        CHECKPOINT_INTERVAL,
        "-o",
        output,
        *rest,
    ]


class Child:
    """The profiled program: its own session (the terminal's signals are the view's), no stdin
    (the view owns the terminal), output line by line to a sink."""

    def __init__(self, command: list[str]) -> None:
        self.command = command
        self.process: asyncio.subprocess.Process | None = None
        self.stopped_by_view = False
        self._readers: list[asyncio.Task[None]] = []

    @property
    def pid(self) -> int | None:
        return None if self.process is None else self.process.pid

    @property
    def returncode(self) -> int | None:
        return None if self.process is None else self.process.returncode

    async def start(self, sink: OutputSink) -> None:
        # unbuffered, so that the program's prints reach the view when they happen
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.process = await asyncio.create_subprocess_exec(
            *self.command,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,
            env=env,
        )
        streams = (("stdout", self.process.stdout), ("stderr", self.process.stderr))
        self._readers = [
            asyncio.create_task(_pump(name, stream, sink))
            for name, stream in streams
            if stream is not None
        ]

    async def wait(self) -> int:
        assert self.process is not None
        code = await self.process.wait()
        # the rest of the output, which may arrive after the exit status
        await asyncio.gather(*self._readers, return_exceptions=True)
        return code

    async def stop(self) -> None:
        """SIGINT to the program's process group, SIGKILL if it is still there after the grace."""
        process = self.process
        if process is None or process.returncode is not None:
            return
        self.stopped_by_view = True
        for sig in (signal.SIGINT, signal.SIGKILL):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, sig)
            try:
                await asyncio.wait_for(process.wait(), STOP_GRACE_S)
                return
            except asyncio.TimeoutError:  # 3.10: not the builtin TimeoutError
                continue

    def kill_if_running(self) -> None:
        """SIGKILL the program's group if the view ended without stopping it (a crash)."""
        if self.process is not None and self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)


async def _pump(name: str, stream: asyncio.StreamReader, sink: OutputSink) -> None:
    while line := await stream.readline():
        sink(name, line.decode(errors="replace").rstrip("\n"))


def exit_status(code: int | None) -> int:
    """A shell's exit status for a child's return code (-N: killed by signal N)."""
    if code is None:
        return 1
    return 128 - code if code < 0 else code
