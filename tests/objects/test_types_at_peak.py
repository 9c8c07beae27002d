"""Types are not recorded at the run's peak: `memlens types CAP --at peak` says so plainly."""

from __future__ import annotations

from pathlib import Path

import pytest

import memlens
from memlens import capture
from memlens.cli import main


def test_types_at_peak_says_they_are_not_recorded_there(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    output = tmp_path / "run.msgpack"
    with memlens.Tracker(output):
        kept = [bytearray(100) for _ in range(10)]
    assert len(kept) == 10 and capture.load(output).snapshots
    assert main(["types", str(output), "--at", "peak"]) != 0
    err = capsys.readouterr().err
    assert err == (
        "memlens types: error: types are recorded at snapshots and at exit, not at the run's"
        " peak; there are: 'exit'\n"
    )
