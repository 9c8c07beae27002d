"""The pure logic under the server: charging lines of a real capture, and moving lines on edits."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from memlens import capture
from memlens.lsp.annotations import Annotations, LineMap, user_code_filter

LIBRARY_CALL = """import base64

data = bytes(3 * 2**20)


def build():
    return base64.b64encode(data)  # line 7: the standard library makes a 4 MiB bytes object


kept = build()
"""


def test_library_allocations_are_charged_to_the_users_line(tmp_path: Path) -> None:
    script = tmp_path / "uses_base64.py"
    script.write_text(LIBRARY_CALL)
    out = tmp_path / "cap.msgpack"
    subprocess.run(
        [sys.executable, "-m", "memlens", "run", "-o", str(out), str(script)],
        check=True,
        capture_output=True,
    )
    profile = capture.load(str(out))
    annotations = Annotations(profile, user_code_filter([str(tmp_path)], include_libraries=False))
    assert annotations.files() == [str(script)]  # base64's own lines are hidden
    top = annotations.top("peak_bytes", 1)[0]
    assert (top.line, top.function) == (7, "build")
    # everything base64 allocated is charged to line 7: charged equals inclusive there
    inclusive = annotations.by_file[str(script)][7].peak_bytes
    assert top.charged["peak_bytes"] == inclusive >= 4 * 2**20
    assert 4 * 2**20 <= top.charged["leak_bytes"] < 4 * 2**20 + 1024  # the result, kept
    shown = Annotations(profile, user_code_filter([], include_libraries=True))
    assert any(f.endswith("/base64.py") for f in shown.files())


def test_line_map_moves_lines_below_an_insert_and_drops_edited_ones() -> None:
    moved = LineMap()
    known = [3, 5, 10]  # recorded 1-based lines with annotations
    moved.apply((0, 0), (0, 0), "a\nb\n", known)  # two lines inserted at the top
    assert [moved.current(line) for line in known] == [4, 6, 11]
    moved.apply((6, 2), (6, 4), "xy", known)  # recorded line 5 (now 6) edited in place
    assert [moved.current(line) for line in known] == [4, None, 11]
    assert moved.stale() == {5: 6}  # still placed, for a "stale" mark
    moved.apply((5, 0), (7, 0), "", known)  # two whole lines deleted above line 10 (now 11)
    assert [moved.current(line) for line in known] == [4, None, 9]
    assert moved.stale() == {5: 5}
    moved.apply((9, 0), (9, 0), "\n", known)  # Enter at the start of the line: it moves down
    assert moved.current(10) == 10
    moved.forget(known)
    assert [moved.current(line) for line in known] == [None, None, None]
