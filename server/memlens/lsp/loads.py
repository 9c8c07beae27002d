"""Loads of captures the user picks (memlens.loadCapture), off the event loop and bounded.

Each load runs on its own daemon thread, at most LIMIT at once; one more is refused at once with
a message instead of queueing. So a load that takes long or never ends (a huge file; a FIFO on a
reader that would wait for a writer) can neither starve the profile runs, whose checkpoints load
on the default executor, nor hold up the server's exit.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from memlens import capture
from memlens.capture import CaptureError
from memlens.model import Profile

LIMIT = 2


class CaptureLoads:
    def __init__(self, limit: int = LIMIT) -> None:
        self.limit = limit
        self.running = 0  # threads still reading (a cancelled request's thread counts until done)

    async def load(self, path: str) -> Profile:
        if self.running >= self.limit:
            raise CaptureError(
                f"{path}: {self.running} captures are still being read;"
                " try again when they are done"
            )
        loop = asyncio.get_running_loop()
        done: asyncio.Future[Profile] = loop.create_future()

        def settle(outcome: Any, failed: bool) -> None:
            self.running -= 1
            if not done.done():
                done.set_exception(outcome) if failed else done.set_result(outcome)

        def read() -> None:
            try:
                outcome: Any = capture.load(path)
                failed = False
            except Exception as error:
                outcome, failed = error, True
            try:
                loop.call_soon_threadsafe(settle, outcome, failed)
            except RuntimeError:  # the server is exiting
                pass

        self.running += 1
        threading.Thread(target=read, name="memlens-load", daemon=True).start()
        return await done
