"""`memlens run --live` as typed in a terminal (tmux on a private socket): the view shows the
known line, `q` stops the program, and the command ends with its status and a kept capture."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from memlens import capture

SCRIPT = Path(__file__).parent / "scripts" / "hold.py"
WAIT_S = 15

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux")


def wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {WAIT_S} s waiting for {what}")
        time.sleep(0.1)


def test_memlens_run_live_in_a_terminal(tmp_path: Path) -> None:
    cap, status = tmp_path / "run.msgpack", tmp_path / "status"
    memlens = shlex.join([sys.executable, "-m", "memlens", "run", "--live", "-o", str(cap)])
    command = (
        # Textual draws on stderr: the closing line is read from the screen, not redirected
        f"{memlens} {shlex.join([str(SCRIPT), str(tmp_path / 'never')])}; "
        f"echo $? > {status}; sleep {WAIT_S}"
    )
    tmux = ["tmux", "-L", f"memlens-live-test-{os.getpid()}"]
    subprocess.run([*tmux, "new-session", "-d", "-x", "80", "-y", "24", command], check=True)
    try:

        def screen() -> str:
            return subprocess.run(
                [*tmux, "capture-pane", "-p", "-J"], capture_output=True, text=True
            ).stdout

        try:
            wait_for(lambda: "30.0 MiB" in screen() and "hold.py" in screen(), "the 30 MiB line")
        except AssertionError:
            print(screen())
            raise
        subprocess.run([*tmux, "send-keys", "q"], check=True)
        wait_for(status.exists, "the command to end")
        wait_for(lambda: status.read_text().strip() != "", "its status")
        closing = screen()
    finally:
        subprocess.run([*tmux, "kill-server"], capture_output=True)
    assert status.read_text().strip() == "130"  # the program's status: stopped by SIGINT
    assert f"memlens: program stopped from the view; capture {cap}" in closing
    assert capture.load(cap).complete
