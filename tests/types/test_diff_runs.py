"""`memlens diff OLD NEW` on two real runs of one script that differ by known sizes."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import capture_writer
import pytest
from real_runs import Run

from memlens import capture
from memlens.cli import main as memlens
from memlens.reports import diff, types

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
    row = next(line for line in out if line.endswith("  grows.py:3"))
    assert row.split()[:6] == ["22.0", "MiB", "+12.0", "MiB", "22.0", "MiB"]
    assert out[out.index(row) + 1] == "... 1 more rows (--limit N, or --limit 0 for all)"


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
        (
            ["a", "b", "--from", "x"],
            "--from and --to compare two snapshots of one capture; give one CAP",
        ),
    ],
)
def test_bad_arguments_are_one_line(
    args: list[str], error: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert memlens(["diff", *args]) == 2
    assert capsys.readouterr().err == f"memlens diff: error: {error}\n"


def test_runs_differ_by_type(two_runs: tuple[str, str]) -> None:
    old, new = (capture.load(p) for p in two_runs)
    per_type, per_site = diff.by_object(old, types.snapshot_at(old), new, types.snapshot_at(new))
    assert (per_type[0].type, per_type[0].count, per_type[0].bytes) == ("bytearray", 0, 12 * MIB)
    site = per_site[0]
    assert (site.type, site.site[1] if site.site else None, site.bytes) == (
        "bytearray",
        KEPT_LINE,
        12 * MIB,
    )


def test_cli_diff_two_runs_by_type(
    two_runs: tuple[str, str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(Path(two_runs[0]).parent)
    assert memlens(["diff", *two_runs, "--limit", "1"]) == 0
    out = capsys.readouterr().out.splitlines()
    first = out.index("Live Python objects by type: new, and change")
    assert out[first + 3].split() == ["1", "+0", "22.0", "MiB", "+12.0", "MiB", "bytearray"]
    assert memlens(["diff", *two_runs, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["types"][0] == {
        "type": "bytearray",
        "old": {"count": 1, "bytes": data["types"][0]["old"]["bytes"]},
        "new": {"count": 1, "bytes": data["types"][0]["old"]["bytes"] + 12 * MIB},
        "change": {"count": 0, "bytes": 12 * MIB},
    }
    assert data["sites"][0]["line"] == KEPT_LINE


def without_snapshots(path: str, folder: Path) -> str:
    """The capture as one written before snapshots existed (no `snapshots` key)."""
    raw = capture_writer.to_dict(capture.load(path))
    del raw["snapshots"]
    out = folder / "no-snapshots.msgpack"
    capture_writer.dump(capture.from_dict(raw), out)
    return str(out)


def test_captures_without_snapshots(
    two_runs: tuple[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bare = without_snapshots(two_runs[0], tmp_path)
    assert memlens(["diff", bare, two_runs[1]]) == 0
    out = capsys.readouterr().out
    assert "22.0 MiB  +12.0 MiB" in out  # the lines still compare
    assert out.rstrip().endswith(
        "No change by type: the old run has no snapshot of objects at exit."
    )
    assert memlens(["diff", bare, "--from", "a", "--to", "b"]) == 2
    assert capsys.readouterr().err == (
        "memlens diff: error: the capture has no snapshots of objects (a run made before they"
        " were recorded, or one that stopped before its first)\n"
    )
