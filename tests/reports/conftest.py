"""Captures made by the real tracker (`python -m memlens run`) from small scripts with known
allocations, once per session."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from memlens import capture
from memlens.model import Profile

# The script's known allocations; BIG_LINE is where 10 MiB is allocated and held at the peak.
SCRIPT = textwrap.dedent(
    """\
    import sys


    def make_big():
        return bytearray(10 * 2**20)


    def churn():
        for _ in range(200):
            junk = [0] * 1000
        return junk


    def main():
        big = make_big()
        keep = churn()
        del big
        leaked.append(bytearray(2 * 2**20))
        return keep


    leaked = []
    main()
    sys.exit(3)
    """
)
BIG_LINE = 5  # `return bytearray(10 * 2**20)` in make_big
BIG_CALL_LINE = 15  # `big = make_big()` in main
LEAK_LINE = 18
MIB = 2**20


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
