"""Captures made by the real tracker (`python -m memlens run`) from small scripts with known
allocations, once per session."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest
from known_script import SCRIPT

from memlens import capture
from memlens.model import Profile
from memlens.reports import terminal


def _tracker_missing() -> str | None:
    if importlib.util.find_spec("memlens._native") is None:
        return "the native tracker (memlens._native) is not built yet"
    if importlib.util.find_spec("memlens.cli.run") is None:
        return "`memlens run` (memlens.cli.run) does not exist yet"
    return None


@pytest.fixture(scope="session")
def real_capture(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(capture path, script path) of one real run of SCRIPT."""
    missing = _tracker_missing()
    if missing:
        pytest.skip(missing)
    folder = tmp_path_factory.mktemp("real")
    script = folder / "known.py"
    script.write_text(SCRIPT)
    output = folder / "known.msgpack"
    run = subprocess.run(
        [sys.executable, "-m", "memlens", "run", "-o", str(output), str(script)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=folder,
    )
    assert run.returncode == 3, run.stderr  # the script's own exit code
    assert output.exists(), run.stderr
    return output, script


@pytest.fixture(scope="session")
def real_profile(real_capture: tuple[Path, Path]) -> Profile:
    return capture.load(real_capture[0])


@pytest.fixture(autouse=True)
def pipe_width(monkeypatch: pytest.MonkeyPatch) -> None:
    """The reports fit $COLUMNS, which pytest-xdist's workers set to 80: every test here starts
    at the pipe width (terminal.PIPE_WIDTH), serially and under -n alike. A test that is about
    the width sets or removes COLUMNS itself."""
    monkeypatch.setenv("COLUMNS", str(terminal.PIPE_WIDTH))
