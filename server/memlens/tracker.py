"""`memlens.Tracker`: record every allocation of a block of code.

    with memlens.Tracker("out.msgpack") as tracker:
        build_index()
    print(tracker.profile.totals.peak_bytes)

A context manager over `memlens._native.start` / `stop`. Only allocations made while it runs
are seen (frees of older memory are ignored), so a Tracker around one call measures that call.
It also names the capture's threads: those alive at start and at stop, and every thread started
while tracking (a one-shot `threading.setprofile` hook names it as soon as it runs).
"""

from __future__ import annotations

import os
import sys
import threading
from types import FrameType, TracebackType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from memlens.model import Profile

ProfileHook = Any  # threading's profile hooks: callable(frame, event, arg) or None


class Tracker:
    """Track allocations inside a `with` block; `.profile` holds the result afterwards."""

    def __init__(
        self,
        output: str | os.PathLike[str] | None = None,
        *,
        python_allocators: bool = True,
        follow_fork: bool = False,
        checkpoint_interval: float = 1.0,
        argv: list[str] | None = None,
    ) -> None:
        self.output = None if output is None else os.fspath(output)
        self.python_allocators = python_allocators
        self.follow_fork = follow_fork
        self.checkpoint_interval = checkpoint_interval
        self.argv = list(sys.argv if argv is None else argv)
        self.capture_bytes: bytes | None = None  # stop()'s capture (msgpack), after the block
        self._profile: Profile | None = None
        self._state = "new"  # new -> tracking -> stopped
        self._pid = 0
        self._previous_thread_hook: ProfileHook = None

    # --- context manager ---------------------------------------------------------------------

    def __enter__(self) -> Tracker:
        self.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # --- start / stop ------------------------------------------------------------------------

    def start(self) -> None:
        from memlens import __version__, _native

        if self._state != "new":
            raise RuntimeError("a memlens.Tracker can be used only once; create a new one")
        if _native.is_tracking():
            # One tracker per process: the hooks and the aggregate are process-wide.
            raise RuntimeError(
                "memlens is already tracking this process; a Tracker cannot run inside another"
            )
        _native.start(
            self.output,
            python_allocators=self.python_allocators,
            follow_fork=self.follow_fork,
            checkpoint_interval=self.checkpoint_interval,
            argv=self.argv,
            memlens_version=__version__,
        )
        self._state = "tracking"
        self._pid = os.getpid()
        self._name_live_threads()
        self._previous_thread_hook = threading.getprofile()
        threading.setprofile(self._thread_started_hook())

    def stop(self, exit_code: int | None = None) -> bytes | None:
        """Stop tracking; the capture's bytes (None in a forked child that is not tracked)."""
        from memlens import _native

        if self._state != "tracking":
            raise RuntimeError("this memlens.Tracker is not tracking")
        self._state = "stopped"
        threading.setprofile(self._previous_thread_hook)
        if os.getpid() != self._pid and not _native.is_tracking():
            # A forked child without follow_fork: tracking ended at the fork, the parent writes.
            return None
        self._name_live_threads()
        try:
            self.capture_bytes = _native.stop(exit_code)
        except OSError as error:
            # Writing the file failed, but the capture is not lost: keep it for .profile.
            self.capture_bytes = getattr(error, "capture", None)
            raise
        return self.capture_bytes

    @property
    def output_path(self) -> str | None:
        """Where this process's capture goes: a followed fork child writes `output.<pid>`."""
        if self.output is None or os.getpid() == self._pid or self._pid == 0:
            return self.output
        return f"{self.output}.{os.getpid()}"

    @property
    def profile(self) -> Profile:
        """The run's Profile, loaded from the capture (after the `with` block)."""
        if self._profile is None:
            if self.capture_bytes is None:
                raise RuntimeError("no profile yet: the Tracker has not stopped")
            from memlens import capture

            self._profile = capture.loads(self.capture_bytes, source=self.output or "capture")
        return self._profile

    # --- thread names ------------------------------------------------------------------------

    @staticmethod
    def _name_live_threads() -> None:
        from memlens import _native

        for thread in threading.enumerate():
            if thread.ident is not None:
                _native.set_thread_name(thread.ident, thread.name)

    def _thread_started_hook(self) -> ProfileHook:
        previous = self._previous_thread_hook

        def name_this_thread(frame: FrameType, event: str, arg: object) -> None:
            from memlens import _native

            # One shot: hand the thread over to whatever hook it would have had without us.
            sys.setprofile(previous)
            if _native.is_tracking():
                _native.set_thread_name(threading.get_ident(), threading.current_thread().name)
            if previous is not None:
                previous(frame, event, arg)

        return name_this_thread
