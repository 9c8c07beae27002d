"""Real runs of small scripts under the tracker (`python -m memlens run`), for the diff and
types reports."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

Run = Callable[..., Path]  # run(name, source, *args) -> capture path


def runner(folder: Path) -> Run:
    """run(name, source, *args): the capture of one real run of `source` saved as name.py in
    `folder` (the same name gives the same path, so two runs line up by file and line)."""

    def run(name: str, source: str, *args: str) -> Path:
        script = folder / f"{name}.py"
        script.write_text(source)
        output = folder / f"{name}-{len(list(folder.glob('*.msgpack')))}.msgpack"
        done = subprocess.run(
            [sys.executable, "-m", "memlens", "run", "-o", str(output), str(script), *args],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=folder,
        )
        assert done.returncode == 0, done.stderr
        return output

    return run
