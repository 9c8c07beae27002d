"""capture.py: the launcher's frames are not the user's, and foreign files are named as such."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from memlens import capture

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "reports"))
from synthetic import build, values  # noqa: E402

RUNPY = ("_run_code", "<frozen runpy>", 88, 80)
MAIN = ("<module>", "/venv/lib/python3.11/site-packages/memlens/__main__.py", 3, 1)
CLI = ("main", "/venv/lib/python3.11/site-packages/memlens/cli/__init__.py", 51, 40)
RUN = ("execute", "/venv/lib/python3.11/site-packages/memlens/cli/run.py", 235, 200)
SCRIPT = ("<module>", "/home/me/app.py", 7, 1)
WORK = ("work", "/home/me/app.py", 3, 2)
USER_RUNPY = ("run_path", "/usr/lib/python3.11/runpy.py", 291, 260)


def test_launcher_frames_at_the_root_are_dropped() -> None:
    profile = build(
        [
            ([RUNPY, MAIN, CLI, RUN, SCRIPT, WORK], values(peak=10 << 20)),
            ([RUNPY, MAIN, CLI, RUN], values(peak=100)),  # the launcher's own allocation
        ]
    )
    stacks = {s.stack_id: s for s in profile.stacks}
    frames = [[f.function for f in s.frames] for s in stacks.values() if s.stack_id >= 0]
    assert frames == [["<module>", "work"]]
    assert stacks[-1].usage.peak_bytes == 100
    assert profile.lines.line("/home/me/app.py", 3).inclusive.peak_bytes == 10 << 20
    assert profile.lines.line("/venv/lib/python3.11/site-packages/memlens/cli/run.py", 235) is None


def test_launcher_frames_deeper_in_user_code_are_kept() -> None:
    profile = build([([SCRIPT, USER_RUNPY, WORK], values(peak=5))])
    (stack,) = profile.stacks
    assert [f.function for f in stack.frames] == ["<module>", "run_path", "work"]


def test_json_file_is_not_a_capture(tmp_path: Path) -> None:
    path = tmp_path / "x.msgpack"
    path.write_text(json.dumps({"magic": "nope"}))
    with pytest.raises(capture.CaptureError, match="not a memlens capture"):
        capture.load(path)
