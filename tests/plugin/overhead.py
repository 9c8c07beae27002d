"""Per-test overhead of `pytest --memlens`, side by side with pytest-memray (a script, not a test).

    .venv/bin/python tests/plugin/overhead.py [--memray-path DIR] [--repeat 3]

Runs a generated suite of 500 trivial tests in fresh processes, plain and tracked; the per-test
overhead is the difference of pytest's own session time (start-up, e.g. the tracker's import,
is in the wall time only) divided by the number of tests. pytest-memray is measured when
importable from --memray-path (`pip install --no-deps --target DIR pytest-memray==1.8.0` keeps it
out of the shared venv). Then the project's own tests/unit, plain and tracked.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SUITE_SIZE = 500
_SESSION_TIME = re.compile(r" in ([0-9.]+)s")

TEST_TEMPLATE = """
def test_{i}():
    values = [n * {i} for n in range(20)]
    assert sum(values) == 190 * {i}
"""


def write_suite(directory: Path, count: int) -> Path:
    suite = directory / f"suite_{count}"
    suite.mkdir()
    per_file = 50
    for start in range(0, count, per_file):
        body = "".join(
            TEST_TEMPLATE.format(i=i) for i in range(start, min(count, start + per_file))
        )
        (suite / f"test_trivial_{start:04d}.py").write_text(body)
    return suite


def run_once(args: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float]:
    """(wall seconds of the whole process, pytest's own session seconds) of one run."""
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - started
    found = _SESSION_TIME.findall(done.stdout.splitlines()[-1] if done.stdout else "")
    if done.returncode != 0 or not found:
        raise SystemExit(
            f"pytest {' '.join(args)} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}"
        )
    return wall, float(found[-1])


def best_of(
    modes: list[tuple[str, list[str], dict[str, str]]], target: Path, cwd: Path, repeat: int
) -> dict[str, tuple[float, float]]:
    """Best wall and session time per mode; rounds interleave the modes, so a burst of load on
    the machine does not land on one mode only."""
    best = {name: (float("inf"), float("inf")) for name, _, _ in modes}
    for _ in range(repeat):
        for name, args, env in modes:
            wall, session = run_once([*args, str(target)], cwd, env)
            best[name] = (min(best[name][0], wall), min(best[name][1], session))
    return best


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--memray-path", default="/tmp/pytest-memray-1.8.0")
    parser.add_argument("--repeat", type=int, default=5)
    options = parser.parse_args()

    base_env = {k: v for k, v in os.environ.items() if k != "PYTEST_ADDOPTS"}
    has_memray = Path(options.memray_path, "pytest_memray").is_dir()
    modes: list[tuple[str, list[str], dict[str, str]]] = [
        ("plain", [], base_env),
        ("--memlens", ["--memlens", "--hide-memlens-summary"], base_env),
        (
            "--memlens --memlens-no-python-allocators",
            ["--memlens", "--hide-memlens-summary", "--memlens-no-python-allocators"],
            base_env,
        ),
    ]
    if has_memray:
        memray_env = dict(base_env, PYTHONPATH=options.memray_path)
        modes.append(
            ("--memray (pytest-memray 1.8.0)", ["--memray", "--most-allocations", "0"], memray_env)
        )

    with tempfile.TemporaryDirectory() as temp:
        suite = write_suite(Path(temp), SUITE_SIZE)
        times = best_of(modes, suite, Path(temp), options.repeat)
    plain_wall, plain_session = times["plain"]
    print(f"{SUITE_SIZE} trivial tests, best of {options.repeat} (wall / pytest session):")
    for name, (wall, session) in times.items():
        per_test = (session - plain_session) / SUITE_SIZE * 1e3
        print(f"  {name:44s} {wall:6.2f} s / {session:6.2f} s   +{per_test:5.2f} ms per test")

    unit = ROOT / "tests" / "unit"
    times = best_of(modes, unit, ROOT, options.repeat)
    print(
        f"project suite {unit.relative_to(ROOT)}, best of {options.repeat} (wall / pytest session):"
    )
    for name, (wall, session) in times.items():
        print(f"  {name:44s} {wall:6.2f} s / {session:6.2f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
