"""`memlens.Tracker`: record every allocation of a block of code.

    with memlens.Tracker("out.msgpack") as tracker:
        build_index()
    print(tracker.profile.totals.peak_bytes)

A context manager over `memlens._native.start` / `stop`. Only allocations made while it runs
are seen (frees of older memory are ignored), so a Tracker around one call measures that call.

memlens never counts itself. In the thread that starts it, the callers of the frame that
entered the Tracker are cut from every stack, and only what is allocated below them while they
are still there is counted (so stacks begin at that frame, or at a sibling called after it
returned); nothing allocated under memlens's own code (this module's `__exit__`, `stop`, ...)
is. Other threads are counted whole (unless `current_thread_only`). With `focus` (a function or a
code object), the starting thread counts only what is allocated under a frame of that code, and
its stacks begin there: the pytest plugin's way to charge a test with its own memory only.

Threads are named natively (their OS names, and Python's names of the threads alive at start and
at stop); a thread started while tracking is named by a one-shot `threading.setprofile` hook,
whose allocations, being memlens's own, are not counted. While tracking, `threading.Thread.name`
is a property whose setter also tells the tracker, so a thread renamed while it runs allocates
under its new name from then on (nothing is added to allocations; only a rename costs a call).
"""

from __future__ import annotations

import os
import sys
import threading
from types import CodeType, FrameType, TracebackType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from memlens.model import Profile

ProfileHook = Any  # threading's profile hooks: callable(frame, event, arg) or None

# memlens's own code: what runs from here is never in a stack nor counted (as co_filename says).
OWN_CODE_DIR = os.path.join(os.path.dirname(__file__), "")


class Tracker:
    """Track allocations inside a `with` block; `.profile` holds the result afterwards."""

    _frames_warmed = False  # CPython 3.10: see _warm_frames

    def __init__(
        self,
        output: str | os.PathLike[str] | None = None,
        *,
        python_allocators: bool = True,
        follow_fork: bool = False,
        checkpoint_interval: float = 1.0,
        argv: list[str] | None = None,
        focus: Any = None,
        current_thread_only: bool = False,
        keep_callers: bool = False,
        temporary_threshold: int = 1,
        snapshot_at_exit: bool = True,
    ) -> None:
        """`focus`: a function (decorators are unwrapped) or a code object (`memlens run` gives
        the program's, so that its stacks begin at the program's first frame). `keep_callers`:
        the starting thread's stacks are kept whole (`memlens attach` starts inside a call the
        program is making: the frames under it are the program's). `temporary_threshold`: a block
        freed within that many allocations of its thread counts as temporary (Memray's
        --temporary-allocation-threshold, same default: 1). `snapshot_at_exit`: an object
        snapshot labelled "exit" is taken when tracking stops (memlens.snapshots)."""
        self.output = None if output is None else os.fspath(output)
        self.focus_code = focus_code_of(focus)
        self.current_thread_only = current_thread_only
        self.keep_callers = keep_callers
        self.temporary_threshold = temporary_threshold
        self.python_allocators = python_allocators
        self.snapshot_at_exit = snapshot_at_exit
        self.follow_fork = follow_fork
        self.checkpoint_interval = checkpoint_interval
        self.argv = list(sys.argv if argv is None else argv)
        self.capture_bytes: bytes | None = None  # stop()'s capture (msgpack), after the block
        self._profile: Profile | None = None
        self._state = "new"  # new -> tracking -> stopped ("warming" for _warm_frames)
        self._pid = 0
        self._previous_thread_hook: ProfileHook = None
        self._renames = _ThreadRenames()

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
        if sys.version_info < (3, 11) and not Tracker._frames_warmed:
            self._warm_frames()
        whole = self.keep_callers or self.focus_code is not None
        cut = None if whole else self._cut_frame(sys._getframe(1))
        self._pid = os.getpid()
        self._previous_thread_hook = threading.getprofile()
        threading.setprofile(self._thread_started_hook())
        self._renames = _follow_thread_renames()
        on_request = _requested_snapshot_handler()  # imports before tracking: none while it runs
        try:
            # The last call before the block runs: nothing of ours after it is counted anyway.
            _native.start(
                self.output,
                python_allocators=self.python_allocators,
                follow_fork=self.follow_fork,
                checkpoint_interval=self.checkpoint_interval,
                argv=self.argv,
                memlens_version=__version__,
                cut=cut,
                own_code_dir=OWN_CODE_DIR,
                focus_code=self.focus_code,
                current_thread_only=self.current_thread_only,
                temporary_threshold=self.temporary_threshold,
            )
        except BaseException:
            threading.setprofile(self._previous_thread_hook)
            self._renames.restore()
            raise
        self._state = "tracking"
        _native.set_snapshot_handler(on_request)

    def _warm_frames(self) -> None:
        """CPython 3.10 allocates a function's frame object in its caller at its first call, and
        keeps it for the next one: `__exit__`'s would be charged to the user's `with` line (424
        B, leaked). Both frames the user's code calls into are made once, before tracking."""
        Tracker._frames_warmed = True
        self._state = "warming"
        self.__exit__(None, None, None)
        self.stop()
        self._state = "new"

    @staticmethod
    def _cut_frame(caller: FrameType) -> FrameType | None:
        """The innermost frame cut from the starting thread's stacks (with its callers): the
        caller of the user's frame, the innermost one outside memlens, which is the root."""
        frame: FrameType | None = caller
        while frame is not None and frame.f_code.co_filename.startswith(OWN_CODE_DIR):
            frame = frame.f_back
        return None if frame is None else frame.f_back

    def stop(self, exit_code: int | None = None) -> bytes | None:
        """Stop tracking; the capture's bytes (None in a forked child that is not tracked)."""
        from memlens import _native

        if self._state == "warming":
            return None
        if self._state != "tracking":
            raise RuntimeError("this memlens.Tracker is not tracking")
        self._state = "stopped"
        _native.set_snapshot_handler(None)
        try:
            if os.getpid() != self._pid and not _native.is_tracking():
                # A forked child without follow_fork: tracking ended at the fork, the parent
                # writes.
                return None
            try:
                if self.snapshot_at_exit:
                    self._exit_snapshot()
            finally:  # even when interrupted: tracking always stops
                self.capture_bytes = _native.stop(exit_code)
        except OSError as error:
            # Writing the file failed, but the capture is not lost: keep it for .profile.
            self.capture_bytes = getattr(error, "capture", None)
            raise
        finally:
            threading.setprofile(self._previous_thread_hook)
            self._renames.restore()
        return self.capture_bytes

    def _exit_snapshot(self) -> None:
        """The "exit" snapshot: its failure never costs the capture (one line on stderr)."""
        try:
            self._take("exit", referenced=True)
        except Exception as error:
            why = f"{type(error).__name__}: {error}"
            sys.stderr.write(f"memlens: no exit object snapshot: {why}\n")

    def snapshot(self, label: str) -> bool:
        """Count the live Python objects by type and allocating line, and find who holds the
        biggest groups, into the capture's `snapshots` under `label`. Nothing it allocates is
        counted. False when this tracker is not tracking (then it does nothing)."""
        if not isinstance(label, str):
            raise TypeError(f"a snapshot label is a str, not {type(label).__name__}")
        return self._take(label, referenced=False)

    def _take(self, label: str, *, referenced: bool) -> bool:
        """A snapshot; `referenced`: also which live blocks the program still reaches (the
        exit snapshot's: it splits what is live at exit into referenced and lost)."""
        from memlens import _native, objects

        if os.getpid() != self._pid or not _native.is_tracking():
            return False
        return objects.take(label, referenced=referenced)

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

    def _thread_started_hook(self) -> ProfileHook:
        # Bound here, not imported in the hook: `memlens run` takes memlens out of sys.modules
        # while the program runs, and an import in each new thread would bring it back.
        from memlens import _native

        previous = self._previous_thread_hook

        def name_this_thread(frame: FrameType, event: str, arg: object) -> None:
            # One shot: hand the thread over to whatever hook it would have had without us.
            sys.setprofile(previous)
            if _native.is_tracking():
                _native.set_thread_name(threading.get_ident(), threading.current_thread().name)
            if previous is not None:
                previous(frame, event, arg)

        return name_this_thread


def _requested_snapshot_handler() -> Any:
    """What takes a snapshot the editor asked for (objects.h `poll_snapshot_request`), at the
    main thread's next safe point; a failure is one line on stderr, never the program's."""
    from memlens import objects  # bound now: `memlens run` takes memlens out of sys.modules

    def take(label: str | None) -> None:
        if label is None:
            return
        try:
            objects.take(label)
        except Exception as error:
            why = f"{type(error).__name__}: {error}"
            sys.stderr.write(f"memlens: no object snapshot {label!r}: {why}\n")

    # Called once now, before tracking (see Tracker._warm_frames): its first call from the
    # pending call would make its 3.10 frame object under the program's frame (488 bytes).
    take(None)
    return take


class _ThreadRenames:
    """`threading.Thread.name` while tracking: the same property, whose setter also tells the
    tracker when a live thread is renamed (DESIGN.md "Threads and fork")."""

    def __init__(self, original: property | None = None, installed: property | None = None):
        self.original = original
        self.installed = installed

    def restore(self) -> None:
        # Only if it is still ours: code that replaced it meanwhile keeps its own.
        if self.installed is not None and threading.Thread.__dict__.get("name") is self.installed:
            threading.Thread.name = self.original  # type: ignore[method-assign,assignment]
        self.installed = None


def _follow_thread_renames() -> _ThreadRenames:
    from memlens import _native  # bound now: `memlens run` takes memlens out of sys.modules

    original = threading.Thread.__dict__.get("name")
    if not isinstance(original, property) or original.fset is None:
        return _ThreadRenames()  # not CPython's threading as we know it: names at stop only
    set_name = original.fset

    def name_and_tell(thread: threading.Thread, name: str) -> None:
        set_name(thread, name)  # first: its checks and errors are the user's, unchanged
        ident = thread.ident
        if ident is not None and thread.is_alive():
            _native.rename_thread(ident, thread.name)

    following = property(original.fget, name_and_tell, original.fdel, original.__doc__)
    threading.Thread.name = following  # type: ignore[method-assign,assignment]
    return _ThreadRenames(original, following)


def focus_code_of(focus: Any) -> CodeType | None:
    """The code object of a focus: a code object, or a function (unwrapped, as pytest does)."""
    if focus is None or isinstance(focus, CodeType):
        return focus
    while hasattr(focus, "__wrapped__"):
        focus = focus.__wrapped__
    code = getattr(focus, "__code__", None)
    if not isinstance(code, CodeType):
        raise TypeError(f"focus must be a function or a code object, not {type(focus).__name__}")
    return code
