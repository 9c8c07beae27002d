"""`memlens diff OLD NEW` on two real runs of one script that differ by known sizes."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from real_runs import Run

from memlens import capture
from memlens.cli import main as memlens
from memlens.reports import diff

MIB = 2**20
# kept: held to the end (peak, total and leaked all move); gone: made and dropped
SCRIPT = textwrap.dedent(
    """\
    import sys

    kept = bytearray(int(sys.argv[1]))
    gone = bytearray(int(sys.argv[2]))
    del gone
    """
)
KEPT_LINE, GONE_LINE = 3, 4


@pytest.fixture(scope="module")
def two_runs(run_script: Run) -> tuple[str, str]:
    old = run_script("grows", SCRIPT, str(10 * MIB), str(3 * MIB))
    new = run_script("grows", SCRIPT, str(22 * MIB), "0")
    return str(old), str(new)


def test_lines_sorted_by_change_with_exact_numbers(two_runs: tuple[str, str]) -> None:
    old, new = (capture.load(p) for p in two_runs)
    changes = diff.by_line(old, new)
    top = changes[0]
    assert (top.line, top.function) == (KEPT_LINE, "<module>")
    # the same object header both times: the change is the buffer's alone
    assert {m: top.change(m) for m in diff.MEASURES} == {
        "peak_bytes": 12 * MIB,
        "alloc_bytes": 12 * MIB,
        "leak_bytes": 12 * MIB,
    }
    assert top.new["leak_bytes"] - top.old["leak_bytes"] == 12 * MIB
    gone = next(c for c in changes if c.line == GONE_LINE)
    # bytearray(0) has no buffer: the 3 MiB + 1 byte buffer (with its NUL) is gone; never live at
    # the peak of either run (the kept buffer made the peak after it was freed) and never leaked
    assert gone.change("alloc_bytes") == -(3 * MIB + 1)
    assert gone.change("leak_bytes") == 0
    assert changes.index(gone) > 0


def test_cli_diff_two_runs(
    two_runs: tuple[str, str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(Path(two_runs[0]).parent)  # locations relative to the working directory
    assert memlens(["diff", *two_runs, "--limit", "1"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "peak 13.0 MiB -> 22.0 MiB (+9.0 MiB); leaked 10.0 MiB -> 22.0 MiB (+12.0 MiB)"
    assert "different scripts" not in "\n".join(out)
    row = next(line for line in out if line.endswith("grows.py:3  <module>"))
    assert row.split()[:6] == ["22.0", "MiB", "+12.0", "MiB", "22.0", "MiB"]
    assert out[-1] == "... 1 more rows (--limit N, or --limit 0 for all)"


def test_cli_diff_json(two_runs: tuple[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    assert memlens(["diff", *two_runs, "--json"]) == 0
    lines = json.loads(capsys.readouterr().out)["lines"]
    assert lines[0]["line"] == KEPT_LINE
    assert lines[0]["change"] == {
        "peak_bytes": 12 * MIB,
        "alloc_bytes": 12 * MIB,
        "leak_bytes": 12 * MIB,
    }


def test_different_scripts_are_named(
    two_runs: tuple[str, str], run_script: Run, capsys: pytest.CaptureFixture[str]
) -> None:
    other = run_script("other", "x = bytearray(1000)\n")
    assert memlens(["diff", two_runs[0], str(other)]) == 0
    out = capsys.readouterr().out
    assert "note: the runs are of different scripts (" in out
    assert "grows.py" in out and "other.py" in out


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["a", "b", "c"], "give two captures (OLD_CAP NEW_CAP), or one with --from and --to"),
        (["a"], "one capture needs --from LABEL and --to LABEL (or give two captures)"),
    ],
)
def test_bad_arguments_are_one_line(
    args: list[str], error: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert memlens(["diff", *args]) == 2
    assert capsys.readouterr().err == f"memlens diff: error: {error}\n"
