"""`python -m memlens run` in a subprocess, and the lines the test scripts mark `# @name`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def memlens_run(
    *args: str, cwd: Path, expect: int = 0, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run memlens on a script; its exit status must be `expect`."""
    done = subprocess.run(
        [sys.executable, "-m", "memlens", "run", *args],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=cwd,
        env=None if env is None else {**os.environ, **env},
    )
    assert done.returncode == expect, f"exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done


def line_of(script: Path, marker: str) -> int:
    """The line of script that ends with `# @marker`."""
    for number, text in enumerate(script.read_text().splitlines(), start=1):
        if text.rstrip().endswith(f"# @{marker}"):
            return number
    raise AssertionError(f"{script.name}: no line marked @{marker}")
