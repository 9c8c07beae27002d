"""Commands: memlens.profile, memlens.loadCapture, memlens.clear, memlens.showStack.

memlens.profile runs the script under `memlens run` in a child process (its own process group, no
shell) writing into the server's private 0700 directory. While it runs, each checkpoint is loaded
and published (about once a second) and `$/progress` reports the elapsed time and live heap.
Cancelling the progress kills the child's process group. A second memlens.profile while one runs
cancels the first (whose result then says cancelled: true): the newest request wins.
Errors are shown with window/showMessage, the command returns null and the last good annotations
stay.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lsprotocol import types
from pygls.exceptions import JsonRpcException, JsonRpcInvalidParams

from memlens import capture
from memlens.capture import CaptureError
from memlens.files import reason
from memlens.lsp import protocol, runner
from memlens.lsp.annotations import Annotations
from memlens.lsp.features import diagnostics
from memlens.model import Profile
from memlens.units import format_bytes

if TYPE_CHECKING:
    from memlens.lsp.server import MemlensServer


def plain(value: Any) -> Any:
    """Client arguments as plain dicts and lists (custom params may arrive as namedtuples)."""
    if hasattr(value, "_asdict"):
        return {k: plain(v) for k, v in value._asdict().items()}
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def first_argument(args: tuple[Any, ...]) -> Any:
    if len(args) > 1:
        raise protocol.ParamsError(f"expected one object as the argument, got {len(args)} values")
    return plain(args[0]) if args else None


def checked(name: str, handler: Any, argument: Callable[[tuple[Any, ...]], Any]) -> Any:
    """A handler for pygls that answers arguments which do not fit with InvalidParams (-32602)
    naming the problem; `argument` picks the handler's one argument from what pygls passes."""

    async def run(ls: Any, *args: Any) -> Any:  # no forward refs: pygls reads the hints
        try:
            result = handler(ls, argument(args))
            return await result if asyncio.iscoroutine(result) else result
        except protocol.ParamsError as error:
            raise JsonRpcInvalidParams(f"invalid arguments for {name}: {error}") from None

    return run


class ProfileJob:
    """One memlens.profile in progress."""

    def __init__(self, run: runner.Run, token: str) -> None:
        self.run = run
        self.token = token
        self.cancel_requested = False
        self.end_message = ""  # the progress's last words
        self.done = asyncio.Event()
        self.task = asyncio.current_task()  # the memlens.profile request, awaited at shutdown

    def kill(self) -> None:
        self.cancel_requested = True
        if self.run.pid is not None:
            runner.kill_group(self.run.pid)


def script_of(profile: Profile) -> str | None:
    """The script a capture made by `memlens run` profiled (its code lens goes there)."""
    script = next((a for a in profile.meta.argv if a.endswith(".py")), None)
    return str(Path(script).resolve()) if script and os.path.isabs(script) else script


async def load_into(
    server: MemlensServer, path: Path, script: str | None, *, final: bool, chosen: bool = False
) -> None:
    """Load a capture (in a thread: big ones take a while) and publish it everywhere. A capture
    the user chose (`chosen`) goes through the bounded loads, our own runs' through the pool."""
    profile = await (
        server.capture_loads.load(str(path)) if chosen else asyncio.to_thread(capture.load, path)
    )
    script = script or script_of(profile)
    annotations = await asyncio.to_thread(_annotated, server, profile)
    # Shown in one turn of the event loop: diagnostics, then the refresh of lenses and hints,
    # then (memlens/didUpdate, the status bar) the summary. No view runs ahead of another.
    server.set_profile(profile, annotations, script)
    updated = diagnostics.publish(server, final=final)
    server.refresh_views()
    await updated


def _annotated(server: MemlensServer, profile: Profile) -> Annotations:
    """The per-line picture with its inclusive numbers (hints, hover, lenses) built: CPU work
    for a thread, done before the profile is shown so that no view waits on it."""
    annotations = server.annotate(profile)
    annotations.warm()
    return annotations


def needs_confirmation(script: str) -> JsonRpcException:
    """The refusal to run a file outside the workspace folders until the user says so."""
    real = os.path.realpath(script)
    return JsonRpcException(
        code=types.LSPErrorCodes.RequestFailed,
        message=(
            f"memlens: {real} is outside the workspace folders; profiling runs it."
            " Profile it only if you trust it (the request must say confirmed: true)."
        ),
        data={"needsConfirmation": True, "path": real},
    )


def _launch_problem(run: runner.Run) -> str:
    text = "\n".join(run.stderr_tail)
    fatal = next((line for line in run.stderr_tail if line.startswith("Fatal Python error")), None)
    if fatal is not None:  # e.g. a broken PYTHONHOME: the last line is "<no Python frame>"
        return (
            f"the interpreter {run.interpreter} could not start ({fatal});"
            " check PYTHONHOME and PYTHONPATH in memlens.env"
        )
    if "No module named memlens" in text:
        return (
            f"the interpreter {run.interpreter} has no memlens module; install it there"
            f" ({run.interpreter} -m pip install memlens) or set memlens.python"
        )
    last = next((line for line in reversed(run.stderr_tail) if line.strip()), "")
    return last or "memlens run failed"


async def profile_script(server: MemlensServer, raw: Any) -> dict[str, Any] | None:
    params = protocol.parse(protocol.ProfileParams, raw)
    script = server.path_of(params.uri)
    if script is None:
        server.show(f"cannot profile {params.uri}: save the file first")
        return None
    if "\0" in script:
        raise protocol.ParamsError("the uri contains a NUL character")
    if not os.path.isfile(script):
        server.show(f"script not found: {script}")
        return None
    if not params.confirmed and server.outside_workspace(script):
        raise needs_confirmation(script)
    if server.running is not None:  # the newest request wins
        previous: ProfileJob = server.running
        previous.kill()
        await previous.done.wait()

    settings = server.settings
    env = {**os.environ, **settings.env, **(params.env or {})}
    cwd = (
        params.cwd or settings.cwd or (server.roots[0] if server.roots else os.path.dirname(script))
    )
    output = server.private_dir / f"{Path(script).stem}-{uuid.uuid4().hex[:8]}.msgpack"
    run = runner.Run(
        interpreter=settings.python,
        script=script,
        args=list(params.args if params.args is not None else settings.args),
        capture=output,
        cwd=cwd,
        env=env,
        python_allocators=settings.python_allocators,
        follow_fork=settings.follow_fork,
        temporary_allocation_threshold=settings.temporary_allocation_threshold,
    )
    token = f"memlens-profile-{uuid.uuid4().hex}"
    job = ProfileJob(run, token)
    server.running = job
    started = time.monotonic()
    try:
        await server.work_done_progress.create_async(token)
    except Exception:  # a client without progress support still gets its profile
        pass
    name = Path(script).name
    server.work_done_progress.begin(
        token,
        types.WorkDoneProgressBegin(
            title=f"memlens: profiling {name}", cancellable=True, message="0 s"
        ),
    )

    def cancelled() -> bool:
        future = server.work_done_progress.tokens.get(token)
        return job.cancel_requested or (future is not None and future.cancelled())

    def on_output(line: str, is_error: bool) -> None:
        server.log(
            f"[{name}] {line}", types.MessageType.Warning if is_error else types.MessageType.Log
        )

    async def on_checkpoint(partial: Path) -> None:
        elapsed = time.monotonic() - started
        try:
            await load_into(server, partial, script, final=False)
        except (CaptureError, OSError):
            return  # a checkpoint being rewritten: the next one will do
        heap = server.profile.timeline.heap if server.profile is not None else None
        live = int(heap[-1]) if heap is not None and len(heap) else 0
        server.work_done_progress.report(
            token,
            types.WorkDoneProgressReport(message=f"{elapsed:.0f} s · heap {format_bytes(live)}"),
        )

    job.end_message = "cancelled"
    try:
        return await _finish(server, job, name, started, on_output, on_checkpoint, cancelled)
    finally:
        server.work_done_progress.end(token, types.WorkDoneProgressEnd(message=job.end_message))


async def _finish(
    server: MemlensServer,
    job: ProfileJob,
    name: str,
    started: float,
    on_output: Callable[[str, bool], None],
    on_checkpoint: Callable[[Path], Awaitable[None]],
    cancelled: Callable[[], bool],
) -> dict[str, Any] | None:
    """Run the child to the end, then load and show its capture (or say what went wrong)."""
    run = job.run
    exit_code: int | None = None
    try:
        exit_code = await runner.execute(run, on_output, on_checkpoint, cancelled)
    except runner.LaunchError as error:
        job.end_message = "failed"
        server.show(f"cannot profile {name}: {error}")
        return None
    finally:
        duration = time.monotonic() - started
        if server.running is job:
            server.running = None
        job.done.set()

    if cancelled():  # killed by a newer request, possibly before the runner noticed
        exit_code = None
    result: dict[str, Any] = {
        "exitCode": exit_code,
        "peakBytes": None,
        "peakText": None,
        "durationS": round(duration, 3),
        "capturePath": None,
        "cancelled": exit_code is None,
    }
    if exit_code is None:
        run.capture.unlink(missing_ok=True)
        run.capture.with_name(run.capture.name + ".partial").unlink(missing_ok=True)
        if server.profile is not None:  # the last checkpoint stays shown, as final
            await diagnostics.publish(server, final=True)
        return result
    job.end_message = "failed"
    partial = run.capture.with_name(run.capture.name + ".partial")
    found = run.capture if run.capture.exists() else partial if partial.exists() else None
    if found is None:
        problem = f"killed by signal {-exit_code}" if exit_code < 0 else _launch_problem(run)
        server.show(f"cannot profile {name}: {problem}")
        return None
    try:
        await load_into(server, found, run.script, final=True)
    except (CaptureError, OSError) as error:
        server.show(f"cannot read the capture of {name}: {error}")
        return None
    finally:
        if found is partial:  # keep it as the capture: it is all there is
            partial.replace(run.capture)
        partial.unlink(missing_ok=True)
    server.replace_capture(run.capture)
    job.end_message = f"peak {server.peak_text()}"
    if exit_code < 0:
        # memlens run writes the whole capture before dying of SIGINT or SIGTERM
        shown = "its last checkpoint" if found is partial else "its capture"
        server.show(
            f"script was killed by signal {-exit_code}; showing {shown}",
            types.MessageType.Warning,
        )
    elif exit_code != 0:
        server.show(f"script exited with code {exit_code}", types.MessageType.Warning)
    assert server.profile is not None
    result["peakBytes"] = server.profile.totals.peak_bytes
    result["peakText"] = server.peak_text()
    result["capturePath"] = str(run.capture)
    return result


async def load_capture(server: MemlensServer, raw: Any) -> dict[str, Any] | None:
    params = protocol.parse(protocol.LoadCaptureParams, raw)
    if "\0" in params.path:
        raise protocol.ParamsError("the path contains a NUL character")
    path = Path(os.path.expanduser(params.path))
    try:
        await load_into(server, path, None, final=True, chosen=True)
    except (CaptureError, OSError) as error:
        message = error if isinstance(error, CaptureError) else reason(error)
        server.show(f"cannot load {path}: {message}")
        return None
    assert server.profile is not None
    return {
        "peakBytes": server.profile.totals.peak_bytes,
        "peakText": server.peak_text(),
        "capturePath": str(path),
    }


def show_stack(server: MemlensServer, raw: Any) -> dict[str, Any]:
    params = protocol.parse(protocol.ShowStackParams, raw)
    file = server.path_of(params.uri)
    if file is None or server.annotations is None:
        return {"stacks": []}
    recorded = server.recorded_line(file, params.line)
    if recorded is None:
        return {"stacks": []}
    stacks = server.annotations.biggest_stacks(file, recorded, "peak_bytes", 3)
    return {
        "stacks": [
            {
                "peakBytes": s.usage.peak_bytes,
                "label": f"▲ {format_bytes(s.usage.peak_bytes)} · {s.frames[-1].function}",
                "frames": [server.frame_dict(f.function, f.file, f.line) for f in s.frames],
            }
            for s in stacks
        ]
    }


async def clear(server: MemlensServer, raw: Any) -> None:
    protocol.parse(protocol.NoParams, raw)
    server.set_profile(None, None, None)
    server.replace_capture(None)
    server.refresh_views()
    await diagnostics.publish(server, final=True)


def register(server: MemlensServer) -> None:
    for name, handler in (
        (protocol.PROFILE, profile_script),
        (protocol.LOAD_CAPTURE, load_capture),
        (protocol.SHOW_STACK, show_stack),
        (protocol.CLEAR, clear),
    ):
        server.command(name)(checked(name, handler, first_argument))
