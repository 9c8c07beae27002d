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

import os
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lsprotocol import types

from memlens.capture import CaptureError
from memlens.files import reason
from memlens.lsp import handlers, protocol, runner, views
from memlens.lsp.handlers import Host
from memlens.units import format_bytes


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


def _run_of(server: Host, params: protocol.ProfileParams, script: str) -> runner.Run:
    """How to run the script: the request's choices over the settings."""
    settings, roots = server.session.settings, server.session.roots
    cwd = params.cwd or settings.cwd or (roots[0] if roots else os.path.dirname(script))
    output = server.private_dir / f"{Path(script).stem}-{uuid.uuid4().hex[:8]}.msgpack"
    return runner.Run(
        interpreter=settings.python,
        script=script,
        args=list(params.args if params.args is not None else settings.args),
        capture=output,
        cwd=cwd,
        env={**os.environ, **settings.env, **(params.env or {})},
        python_allocators=settings.python_allocators,
        follow_fork=settings.follow_fork,
        temporary_allocation_threshold=settings.temporary_allocation_threshold,
    )


async def profile_script(server: Host, raw: Any) -> protocol.ProfileResult | None:
    params = protocol.parse(protocol.ProfileParams, raw)
    script = handlers.file_to_run(server, params.uri, params.confirmed)
    if script is None:
        return None
    return await run_profile(server, _run_of(server, params, script), script, Path(script).name)


async def run_profile(
    server: Host,
    run: runner.Run,
    script: str,
    name: str,
    *,
    remap: views.Remap | None = None,
    explain: Callable[[str], str] = str,
    exit_problem: Callable[[int], str | None] = lambda code: None,
) -> protocol.ProfileResult | None:
    """Run a script to the end, showing its checkpoints and then its capture; the newest run
    wins. A notebook's run (features/notebook.py) shows its profile on the cells (`remap`), its
    output with the cells named (`explain`) and why it failed (`exit_problem`)."""
    await handlers.stop_running(server)
    job = views.ProfileJob(run, f"memlens-profile-{uuid.uuid4().hex}")
    server.running = job
    started = time.monotonic()
    await views.begin_progress(server, job.token, f"memlens: profiling {name}")

    def cancelled() -> bool:
        return job.cancel_requested or views.progress_cancelled(server, job.token)

    def on_output(line: str, is_error: bool) -> None:
        kind = types.MessageType.Warning if is_error else types.MessageType.Log
        server.log(f"[{name}] {explain(line)}", kind)

    async def on_checkpoint(partial: Path) -> None:
        elapsed = time.monotonic() - started
        await views.show_checkpoint(server, partial, script, job.token, elapsed, remap)

    job.end_message = "cancelled"
    shown = _Shown(script, name, remap, exit_problem)
    try:
        return await _finish(server, job, shown, started, on_output, on_checkpoint, cancelled)
    finally:
        server.work_done_progress.end(job.token, types.WorkDoneProgressEnd(message=job.end_message))


@dataclass(frozen=True)
class _Shown:
    """How a run's end is shown: where, named how, and its failure in the user's terms."""

    script: str  # the file (a notebook: its first cell) that gets the run's lens
    name: str
    remap: views.Remap | None
    exit_problem: Callable[[int], str | None]


async def _finish(
    server: Host,
    job: views.ProfileJob,
    shown: _Shown,
    started: float,
    on_output: Callable[[str, bool], None],
    on_checkpoint: Callable[[Path], Awaitable[None]],
    cancelled: Callable[[], bool],
) -> protocol.ProfileResult | None:
    """Run the child to the end, then load and show its capture (or say what went wrong)."""
    run = job.run
    exit_code: int | None = None
    try:
        exit_code = await runner.execute(run, on_output, on_checkpoint, cancelled)
    except runner.LaunchError as error:
        job.end_message = "failed"
        server.show(f"cannot profile {shown.name}: {error}")
        return None
    finally:
        duration = time.monotonic() - started
        if server.running is job:
            server.running = None
        job.done.set()

    if cancelled():  # killed by a newer request, possibly before the runner noticed
        exit_code = None
    result = protocol.ProfileResult(
        exit_code=exit_code, duration_s=round(duration, 3), cancelled=exit_code is None
    )
    if exit_code is None:
        run.capture.unlink(missing_ok=True)
        run.capture.with_name(run.capture.name + ".partial").unlink(missing_ok=True)
        if server.session.profile is not None:  # the last checkpoint stays shown, as final
            server.session.live = False
            updated = server.publish(final=True)
            server.refresh_views()
            await updated
        return result
    job.end_message = "failed"
    return await _show_capture(server, job, shown, exit_code, result)


async def _show_capture(
    server: Host,
    job: views.ProfileJob,
    shown: _Shown,
    exit_code: int,
    result: protocol.ProfileResult,
) -> protocol.ProfileResult | None:
    """Show what a finished run wrote: its capture, else its last checkpoint."""
    run, name = job.run, shown.name
    partial = run.capture.with_name(run.capture.name + ".partial")
    found = run.capture if run.capture.exists() else partial if partial.exists() else None
    if found is None:
        problem = f"killed by signal {-exit_code}" if exit_code < 0 else _launch_problem(run)
        server.show(f"cannot profile {name}: {problem}")
        return None
    try:
        await views.load_into(server, found, shown.script, final=True, remap=shown.remap)
    except (CaptureError, OSError) as error:
        server.show(f"cannot read the capture of {name}: {error}")
        return None
    finally:
        if found is partial:  # keep it as the capture: it is all there is
            partial.replace(run.capture)
        partial.unlink(missing_ok=True)
    server.session.replace_capture(run.capture)
    peak = views.peak_text(server.session)
    job.end_message = f"peak {peak}"
    if exit_code < 0:
        # memlens run writes the whole capture before dying of SIGINT or SIGTERM
        kept = "its last checkpoint" if found is partial else "its capture"
        server.show(
            f"script was killed by signal {-exit_code}; showing {kept}",
            types.MessageType.Warning,
        )
    elif exit_code != 0:
        problem = shown.exit_problem(exit_code) or f"script exited with code {exit_code}"
        server.show(problem, types.MessageType.Warning)
    result.peak_bytes, result.peak_text = server.session.peak_bytes, peak
    result.capture_path = str(run.capture)
    return result


async def load_capture(server: Host, raw: Any) -> protocol.CaptureResult | None:
    params = protocol.parse(protocol.LoadCaptureParams, raw)
    if "\0" in params.path:
        raise protocol.ParamsError("the path contains a NUL character")
    path = Path(os.path.expanduser(params.path))
    try:
        await views.load_into(server, path, None, final=True, chosen=True)
    except (CaptureError, OSError) as error:
        message = error if isinstance(error, CaptureError) else reason(error)
        server.show(f"cannot load {path}: {message}")
        return None
    session = server.session
    return protocol.CaptureResult(
        peak_bytes=session.peak_bytes, peak_text=views.peak_text(session), capture_path=str(path)
    )


def show_stack(server: Host, raw: Any) -> protocol.ShowStackResult:
    params = protocol.parse(protocol.ShowStackParams, raw)
    session = server.session
    file = handlers.path_of(params.uri)
    if file is None or session.annotations is None:
        return protocol.ShowStackResult(stacks=[])
    recorded = session.recorded_line(file, params.line)
    if recorded is None:
        return protocol.ShowStackResult(stacks=[])
    stacks = session.annotations.biggest_stacks(file, recorded, "peak_bytes", 3)
    return protocol.ShowStackResult(
        stacks=[
            protocol.PeakStack(
                peak_bytes=s.usage.peak_bytes,
                label=f"▲ {format_bytes(s.usage.peak_bytes)} · {s.frames[-1].function}",
                frames=[handlers.frame(session, f.function, f.file, f.line) for f in s.frames],
            )
            for s in stacks
        ]
    )


async def clear(server: Host, raw: Any) -> None:
    protocol.parse(protocol.NoParams, raw)
    server.session.clear()
    server.refresh_views()
    await server.publish(final=True)


def register(server: Host) -> None:
    handlers.register(
        server,
        (protocol.PROFILE, profile_script),
        (protocol.LOAD_CAPTURE, load_capture),
        (protocol.SHOW_STACK, show_stack),
        (protocol.CLEAR, clear),
    )
    server.run_profile = run_profile
