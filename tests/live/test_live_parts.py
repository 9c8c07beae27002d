"""The live view's parts without a screen: the child's command line, the follower's choice of
file, and the command-line errors."""

from __future__ import annotations

import asyncio
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from memlens import capture, cli
from memlens.live import program
from memlens.live.follower import Follower, capture_paths
from memlens.live.program import Child, child_command, exit_status
from memlens.live.rows import short_path

WriteCapture = Callable[[Path, int], None]
SCRIPT = Path(__file__).parent / "scripts" / "hold.py"


def test_the_child_is_memlens_run_without_live_and_the_users_options_win() -> None:
    argv = ["--live", "--checkpoint-interval", "2", "app.py", "--live", "x"]
    assert child_command(argv, "CAP") == [
        sys.executable,
        *("-m", "memlens", "run", "--checkpoint-interval", "0.5", "-o", "CAP"),
        *("--checkpoint-interval", "2", "app.py", "--live", "x"),  # the program keeps its --live
    ]


def test_capture_paths_from_either_name() -> None:
    assert capture_paths("a/run.msgpack") == (Path("a/run.msgpack.partial"), Path("a/run.msgpack"))
    assert capture_paths("run.msgpack.partial") == (
        Path("run.msgpack.partial"),
        Path("run.msgpack"),
    )


def test_the_follower_reads_a_changed_file_once_and_prefers_the_newer(
    tmp_path: Path, write_capture: WriteCapture
) -> None:
    cap = tmp_path / "run.msgpack"
    partial = tmp_path / "run.msgpack.partial"
    now = time.time_ns()
    write_capture(partial, now)
    follower = Follower(partial)
    first = follower.poll()
    assert first is not None and first.path == partial and not first.final
    assert first.written_ns == now
    assert first.profile is not None and first.profile.totals.peak_bytes >= 1024 * 1024
    assert follower.poll() is None  # unchanged: not read again
    write_capture(cap, now + 1_000_000)
    last = follower.poll()
    assert last is not None and last.path == cap and last.final and follower.done
    assert follower.poll() is None


def test_the_follower_ignores_an_older_runs_capture(
    tmp_path: Path, write_capture: WriteCapture
) -> None:
    cap = tmp_path / "run.msgpack"
    now = time.time_ns()
    write_capture(cap, now - 10**9)
    follower = Follower(cap, since_ns=now)
    assert follower.poll() is None
    write_capture(Path(f"{cap}.partial"), now + 1)
    snapshot = follower.poll()
    assert snapshot is not None and not snapshot.final
    assert isinstance(capture.load(snapshot.path).totals.peak_bytes, int)


def test_a_corrupt_checkpoint_is_an_error_not_a_crash(tmp_path: Path) -> None:
    partial = tmp_path / "run.msgpack.partial"
    partial.write_bytes(b"\x81\xa5magic\xafmemlens-capture")  # a capture cut short
    snapshot = Follower(partial).poll()
    assert snapshot is not None and snapshot.profile is None
    assert snapshot.error is not None and str(partial) in snapshot.error


def memlens(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """The command in this process (a CLI error never gets as far as a child): exit code,
    stdout, stderr."""
    code = cli.main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_command_line_errors_are_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert memlens(capsys, "live", str(tmp_path / "nowhere" / "run.msgpack.partial")) == (
        2,
        "",
        f"memlens live: error: {tmp_path}/nowhere/run.msgpack.partial: "
        f"directory '{tmp_path}/nowhere' does not exist\n",
    )
    assert memlens(capsys, "run", "--live", str(tmp_path / "none.py")) == (
        2,
        "",
        f"memlens run: error: {tmp_path}/none.py: no such file\n",
    )
    # under pytest, stdin and stderr are not a terminal
    assert memlens(capsys, "run", "--live", str(SCRIPT), str(tmp_path / "never")) == (
        2,
        "",
        "memlens run: error: --live needs a terminal (stdin and stderr); "
        "for a report use memlens summary\n",
    )
    assert "--live" in memlens(capsys, "run", "--help")[1]
    assert "live" in memlens(capsys, "--help")[1]


@pytest.mark.asyncio(loop_scope="function")
async def test_a_program_that_ignores_sigint_is_killed_after_the_grace(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(program, "STOP_GRACE_S", 0.5)  # a shorter grace keeps the tier fast
    code = (
        "import signal, time; signal.signal(signal.SIGINT, signal.SIG_IGN); "
        "print('ready'); time.sleep(30)"
    )
    child = Child([sys.executable, "-c", code])
    output: list[tuple[str, str]] = []
    await child.start(lambda stream, line: output.append((stream, line)))
    deadline = time.monotonic() + 10
    while ("stdout", "ready") not in output and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert ("stdout", "ready") in output  # unbuffered: the line arrives while it runs
    started = time.monotonic()
    await child.stop()
    assert child.returncode == -signal.SIGKILL
    assert 0.5 <= time.monotonic() - started < 0.5 + 2
    assert child.stopped_by_view
    assert exit_status(child.returncode) == 137


def test_locations_are_short_in_the_table(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir("/usr")
    assert short_path("/usr/lib/python3.11/threading.py") == "lib/python3.11/threading.py"
    assert short_path("/opt/project/pkg/module.py") == "/opt/project/pkg/module.py"  # 26 chars
    assert short_path("/opt/venv/lib/python3.11/site-packages/numpy/core/numeric.py") == (
        "…/core/numeric.py"
    )
