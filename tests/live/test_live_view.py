"""The live view driven headless with Textual's pilot, over a real `memlens run` and its real
checkpoints (written every 0.2 s)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import DataTable, Log, Select, Static, TabbedContent

from memlens import capture
from memlens.live.app import LiveApp
from memlens.live.follower import Follower
from memlens.live.program import Child, child_command
from memlens.live.rows import COLUMNS
from memlens.reports.terminal import location

pytestmark = pytest.mark.asyncio(loop_scope="function")

SCRIPT = Path(__file__).parent / "scripts" / "hold.py"
SIZE = (160, 50)
WAIT_S = 15  # bound of every wait; a checkpoint comes every 0.2 s


def line_of(marker: str) -> str:
    """The table's row key of the script line that carries `marker`."""
    for number, text in enumerate(SCRIPT.read_text().splitlines(), 1):
        if marker in text:
            return f"{SCRIPT}:{number}"
    raise AssertionError(marker)


BIG, MANY, WORKER = line_of("BIG LINE"), line_of("MANY LINE"), line_of("WORKER LINE")


async def wait_until(pilot: Pilot[None], condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {WAIT_S} s waiting for {what}")
        await pilot.pause(0.1)


def table(app: LiveApp) -> DataTable[str]:
    return app.query_one("#lines", DataTable)


def cells(app: LiveApp) -> dict[str, dict[str, str]]:
    """Row key ("file:line") -> the row's cells by column title."""
    lines = table(app)
    return {
        str(row.key.value): dict(zip(COLUMNS, map(str, lines.get_row(row.key)), strict=True))
        for row in lines.ordered_rows
    }


def first_row(app: LiveApp) -> str:
    return str(table(app).ordered_rows[0].key.value)


def status(app: LiveApp) -> str:
    return str(app.query_one("#status", Static).render())


def has_row(app: LiveApp, key: str, live_now: str) -> Callable[[], bool]:
    return lambda: cells(app).get(key, {}).get("live now") == live_now


async def test_run_live_shows_lines_sorts_threads_output_and_q_stops_the_program(
    tmp_path: Path,
) -> None:
    cap = tmp_path / "run.msgpack"
    argv = ["--live", "--checkpoint-interval", "0.2", str(SCRIPT), str(tmp_path / "never")]
    child = Child(child_command(argv, str(cap)))
    app = LiveApp(Follower(cap, since_ns=time.time_ns()), child)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, has_row(app, BIG, "30.0 MiB"), "the 30 MiB line")
        row = cells(app)[BIG]
        assert row["function"] == "<module>"
        assert row["at peak"] == "30.0 MiB"
        assert row["allocated"] == "30.0 MiB"
        assert first_row(app) == BIG  # sorted by live now
        await pilot.press("n")  # by allocations: the 20,000 strings come first
        await wait_until(pilot, lambda: first_row(app) == MANY, "the sort by allocations")
        assert int(cells(app)[MANY]["allocations"].replace(",", "")) >= 20000
        assert int(cells(app)[MANY]["live #"].replace(",", "")) >= 20000
        await pilot.press("l")
        await wait_until(pilot, lambda: first_row(app) == BIG, "the sort by live now")

        # the thread selector: the worker thread holds its 5 MiB and nothing of the main thread
        await wait_until(pilot, lambda: len(app.thread_ids) >= 3, "both threads")
        assert app.snapshot is not None and app.snapshot.profile is not None
        names = app.snapshot.profile.threads
        worker = next(thread for thread, name in names.items() if name == "worker")
        for _ in app.thread_ids:  # `t` steps through the selector's threads
            if app.thread == worker:
                break
            await pilot.press("t")
            await pilot.pause(0.1)
        assert app.query_one("#thread", Select).value == worker
        await wait_until(pilot, has_row(app, WORKER, "5.0 MiB"), "the worker's line")
        assert BIG not in cells(app)

        log = app.query_one("#program-output", Log)
        assert "allocated 30 MiB" in log.lines
        await pilot.press("o")
        assert app.query_one(TabbedContent).active == "output"

        pid = child.pid
        assert pid is not None
        await pilot.press("q")
        await wait_until(pilot, lambda: child.returncode is not None, "the program to stop")
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert child.stopped_by_view
    assert child.returncode == -signal.SIGINT  # a KeyboardInterrupt: it dies of SIGINT, as python
    kept = capture.load(cap)  # the capture is kept, complete
    assert kept.complete
    stats = kept.lines.line(str(SCRIPT), int(BIG.rsplit(":", 1)[1]))
    assert stats is not None and stats.self.peak_bytes >= 30 * 1024 * 1024


async def test_live_follows_another_run_leaves_it_alone_and_shows_the_end(tmp_path: Path) -> None:
    cap = tmp_path / "other.msgpack"
    release = tmp_path / "release"
    command = [sys.executable, "-m", "memlens", "run", "--checkpoint-interval", "0.2"]
    with subprocess.Popen(
        [*command, "-o", str(cap), str(SCRIPT), str(release)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    ) as run:
        try:
            app = LiveApp(Follower(f"{cap}.partial"))
            async with app.run_test(size=SIZE) as pilot:
                await wait_until(pilot, has_row(app, BIG, "30.0 MiB"), "the 30 MiB line")
                assert "following" in status(app)
                await pilot.press("q")
            assert run.poll() is None  # quitting `memlens live` leaves the run going

            app = LiveApp(Follower(f"{cap}.partial"))
            async with app.run_test(size=SIZE) as pilot:
                await wait_until(pilot, has_row(app, BIG, "30.0 MiB"), "the 30 MiB line again")
                release.touch()
                await wait_until(pilot, lambda: app.follower.done, "the complete capture")
                await pilot.pause(0.1)
                assert "finished" in status(app)
                await pilot.press("s")
                assert app.query_one(TabbedContent).active == "summary"
                summary = str(app.query_one("#summary-text", Static).render())
                # the summary report shows paths relative to the working directory
                file, _, number = BIG.rpartition(":")
                big_line = location(file, int(number))
                assert "Peak memory" in summary and big_line in summary
                await pilot.press("q")
            assert run.wait(WAIT_S) == 0
        finally:
            run.kill()


async def test_an_unreadable_checkpoint_is_shown_in_the_status_line(tmp_path: Path) -> None:
    partial = tmp_path / "bad[1].msgpack.partial"  # brackets: shown as text, not markup
    partial.write_bytes(b"not a capture at all")
    app = LiveApp(Follower(partial))
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: "cannot read" in status(app), "the error")
        assert f"cannot read: {partial}: not a memlens capture" in status(app)
        await pilot.press("q")


async def test_a_quiet_run_is_pointed_out(
    tmp_path: Path, write_capture: Callable[[Path, int], None]
) -> None:
    partial = tmp_path / "quiet.msgpack.partial"
    write_capture(partial, time.time_ns() - 60 * 10**9)  # a run killed a minute ago
    app = LiveApp(Follower(partial))
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: "last checkpoint" in status(app), "the status")
        assert "following" in status(app)
        assert re.search(r"last checkpoint 6\d s ago", status(app))  # 60 s, and the start-up
        await pilot.press("s")  # a run that was killed still has its summary
        summary = str(app.query_one("#summary-text", Static).render())
        assert re.search(r"Peak memory: +1\.0 MiB", summary)
        await pilot.press("q")
