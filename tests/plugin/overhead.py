"""Per-test overhead of `pytest --memlens`, side by side with pytest-memray (a script, not a test).

    .venv/bin/python tests/plugin/overhead.py [--memray-path DIR] [--repeat 3]

Runs a generated suite of trivial tests at two sizes in fresh processes, plain and tracked; the
per-test overhead is the slope ((T(large) - T(small)) / extra tests), so one-time start-up (the
tracker's import) is reported apart. pytest-memray is measured when importable from
--memray-path (e.g. `pip install --no-deps --target DIR pytest-memray==1.8.0`, which keeps it out
of the shared venv). Then the project's own tests/unit, plain and tracked.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SIZES = (100, 500)

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


def timed_run(args: list[str], cwd: Path, env: dict[str, str], repeat: int) -> float:
    """The best wall time of `repeat` runs of pytest (fresh processes), in seconds."""
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
        )
        elapsed = time.perf_counter() - started
        if done.returncode != 0:
            raise SystemExit(
                f"pytest {' '.join(args)} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}"
            )
        best = min(best, elapsed)
    return best


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--memray-path", default="/tmp/pytest-memray-1.8.0")
    parser.add_argument("--repeat", type=int, default=3)
    options = parser.parse_args()

    base_env = {k: v for k, v in os.environ.items() if k != "PYTEST_ADDOPTS"}
    memray_env = dict(base_env, PYTHONPATH=options.memray_path)
    has_memray = Path(options.memray_path, "pytest_memray").is_dir()
    modes: list[tuple[str, list[str], dict[str, str]]] = [
        ("plain", [], base_env),
        ("--memlens", ["--memlens", "--memlens-top", "0"], base_env),
        (
            "--memlens --memlens-no-python-allocators",
            ["--memlens", "--memlens-top", "0", "--memlens-no-python-allocators"],
            base_env,
        ),
    ]
    if has_memray:
        modes.append(
            ("--memray (pytest-memray 1.8.0)", ["--memray", "--most-allocations", "0"], memray_env)
        )

    with tempfile.TemporaryDirectory() as temp:
        suites = {n: write_suite(Path(temp), n) for n in SIZES}
        times = {}
        for name, args, env in modes:
            times[name] = {
                n: timed_run([*args, str(suites[n])], Path(temp), env, options.repeat)
                for n in SIZES
            }
        small, large = SIZES
        plain_slope = (times["plain"][large] - times["plain"][small]) / (large - small)
        print(f"generated suite, {small} and {large} trivial tests, best of {options.repeat}:")
        for name, by_size in times.items():
            slope = (by_size[large] - by_size[small]) / (large - small)
            fixed = by_size[small] - slope * small
            print(
                f"  {name:44s} {by_size[large]:6.2f} s for {large}; "
                f"{slope * 1e3:6.2f} ms/test (+{(slope - plain_slope) * 1e3:5.2f} ms over plain); "
                f"start-up {fixed:5.2f} s"
            )

    unit = ROOT / "tests" / "unit"
    print(f"project suite {unit.relative_to(ROOT)}, best of {options.repeat}:")
    for name, args, env in modes:
        elapsed = timed_run([*args, str(unit)], ROOT, env, options.repeat)
        print(f"  {name:44s} {elapsed:6.2f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
