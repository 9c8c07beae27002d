"""Attach to a running process: how long until tracking and its first checkpoint, and how much
the process slows down while attached, side by side with `memlens run` and `memray attach`.

The target repeats one unit of allocation-heavy work (objects and dicts, bench/workloads.py's
`objects` in small) and prints when each unit started and ended, and its main thread's CPU
time. For each profiler one fresh target runs: units before the attach (the baseline), units
while attached, units after the detach; a unit counts for a phase only if it lies wholly inside
it. Slowdown = median unit CPU time in the phase / median unit CPU time of the same process's
baseline. `memlens run` runs the same target from its start, against a plain run. Not part of
`make test` (it needs gdb and ptrace).

    python bench/attach.py [--units N] [--rounds N]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

PYTHON = sys.executable
RESULTS = Path(__file__).resolve().parent / "results"

TARGET = """\
import os, sys, time

class Point:
    def __init__(self, x, y):
        self.x = x
        self.y = y
        self.tags = {"x": x, "y": y}

def unit():
    points = [Point(i, i * 2) for i in range(15_000)]
    groups = {}
    for p in points:
        groups.setdefault(p.x % 1000, []).append(p)

print("ready", flush=True)
while not os.path.exists(sys.argv[1]):
    started, cpu = time.monotonic(), time.thread_time()
    unit()
    print("unit", started, time.monotonic(), time.thread_time() - cpu, flush=True)
"""


class Target:
    """The target process; a reader thread collects its (start, end) unit times."""

    def __init__(self, folder: Path, prefix: list[str] | None = None) -> None:
        self.script = folder / "target.py"
        self.script.write_text(TARGET)
        self.stop_file = folder / f"stop-{time.monotonic_ns()}"
        self.units: list[tuple[float, float, float]] = []  # start, end, main thread's CPU s
        self.process = subprocess.Popen(
            [*(prefix or [PYTHON]), str(self.script), str(self.stop_file)],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )  # fmt: skip
        assert self.process.stdout is not None
        assert self.process.stdout.readline() == "ready\n"
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            if line.startswith("unit "):
                _, start, end, cpu = line.split()
                self.units.append((float(start), float(end), float(cpu)))

    def wait_units(self, count: int, after: float) -> None:
        while sum(1 for start, _, _ in self.units if start >= after) < count:
            assert self.process.poll() is None, "the target died"
            time.sleep(0.01)

    def warm_up(self, count: int) -> float:
        """Let the first units pass (they fault the heap's pages in); when the rest start."""
        self.wait_units(count, 0)
        return time.monotonic()

    def median(self, start: float, end: float) -> float:
        """The median CPU time of the main thread per unit inside [start, end].

        CPU time, not wall time: the machine is shared, and other processes' load would
        otherwise swamp the difference (the tracker's own thread is not in it: it samples the
        heap every 10 ms and writes a checkpoint a second, on another core when there is one).
        """
        inside = [cpu for a, b, cpu in self.units if a >= start and b <= end]
        assert inside, "no unit inside the phase"
        return statistics.median(inside)

    def stop(self) -> int:
        self.stop_file.touch()
        code = self.process.wait(timeout=60)
        self.reader.join(timeout=10)
        return code


def run(command: list[str]) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done


def attached_phase(
    folder: Path, units: int, rounds: int, attach: list[str], detach: list[str], memlens: bool
) -> dict[str, float]:
    """One fresh target: a baseline, then rounds of (attach, units attached, detach, units).

    The attach timings and the attached slowdown are medians over the rounds; the units after
    each detach say whether anything is left behind.
    """
    target = Target(folder)
    pid = str(target.process.pid)
    start = target.warm_up(units)
    target.wait_units(units, start)
    baseline = target.median(start, time.monotonic())
    timings: dict[str, list[float]] = {"attached_s": [], "first_checkpoint_s": []}
    attached, after = [], []
    for round_number in range(rounds):
        output = folder / f"capture-{round_number}"
        launched = time.monotonic()
        attacher = subprocess.Popen(
            [part.replace("PID", pid).replace("OUTPUT", str(output)) for part in attach],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert attacher.stderr is not None
        if memlens:  # memlens says when it tracks, and stays until the detach
            said = attacher.stderr.readline()
            assert said.startswith("memlens: tracking"), said + attacher.stderr.read()
            timings["attached_s"].append(time.monotonic() - launched)
            while not Path(f"{output}.partial").exists():  # the first thing the editor shows
                time.sleep(0.005)
            timings["first_checkpoint_s"].append(time.monotonic() - launched)
        else:  # memray attach returns once tracking runs
            attacher.wait(timeout=120)
            assert attacher.returncode == 0, attacher.stderr.read()
            timings["attached_s"].append(time.monotonic() - launched)
        start = time.monotonic()
        target.wait_units(units, start)
        attached.append(target.median(start, time.monotonic()))
        run([part.replace("PID", pid) for part in detach])
        attacher.communicate(timeout=60)
        start = time.monotonic()
        target.wait_units(units, start)
        after.append(target.median(start, time.monotonic()))
    assert target.stop() == 0
    figures = {name: statistics.median(values) for name, values in timings.items() if values}
    figures["baseline_unit_ms"] = baseline * 1000
    figures["attached_slowdown"] = statistics.median(attached) / baseline
    figures["after_detach_slowdown"] = statistics.median(after) / baseline
    return figures


def under_run(folder: Path, units: int) -> dict[str, float]:
    """The same target under `memlens run` from its start, against a plain run's units."""
    medians = []
    for prefix in ([PYTHON], [PYTHON, "-m", "memlens", "run", "-o", str(folder / "run.msgpack")]):
        target = Target(folder, prefix)
        started = target.warm_up(units)
        target.wait_units(units, started)
        target.stop()
        medians.append(target.median(started, time.monotonic()))
    return {"baseline_unit_ms": medians[0] * 1000, "slowdown": medians[1] / medians[0]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--units", type=int, default=20, help="units measured per phase")
    parser.add_argument("--rounds", type=int, default=3, help="attach/detach rounds per tool")
    options = parser.parse_args()
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="memlens-bench-attach-") as name:
        folder = Path(name)
        memlens = [PYTHON, "-m", "memlens"]
        memray = [PYTHON, "-m", "memray"]
        modes = {
            "memlens attach": [*memlens, "attach", "PID", "-o", "OUTPUT"],
            "memlens attach --no-python-allocators": [
                *memlens, "attach", "PID", "-o", "OUTPUT", "--no-python-allocators"
            ],
            "memray attach": [*memray, "attach", "PID", "-f", "-o", "OUTPUT"],
            "memray attach --trace-python-allocators": [
                *memray, "attach", "PID", "-f", "-o", "OUTPUT", "--trace-python-allocators"
            ],
        }  # fmt: skip
        for label, attach in modes.items():
            tool = attach[2]
            results[label] = attached_phase(
                folder,
                options.units,
                options.rounds,
                attach,
                [PYTHON, "-m", tool, "detach", "PID"],
                memlens=tool == "memlens",
            )
        results["memlens run"] = under_run(folder, options.units)
    print_table(results)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "attach.json").write_text(json.dumps(results, indent=2) + "\n")
    return 0


def print_table(results: dict[str, dict[str, float]]) -> None:
    print(f"{'mode':<42} {'attach->tracking':>17} {'->1st checkpoint':>17} "
          f"{'slowdown attached':>18} {'after detach':>13}")  # fmt: skip
    for label, figures in results.items():
        tracking = f"{figures['attached_s']:.2f} s" if "attached_s" in figures else "-"
        first = figures.get("first_checkpoint_s")
        slowdown = figures.get("attached_slowdown", figures.get("slowdown", 0.0))
        after = figures.get("after_detach_slowdown")
        print(
            f"{label:<42} {tracking:>17} {f'{first:.2f} s' if first else '-':>17} "
            f"{slowdown:>17.2f}x {f'{after:.2f}x' if after else '-':>13}"
        )
    unit = results["memlens run"]["baseline_unit_ms"]
    print(f"(slowdown: main thread's CPU time per unit of work; unprofiled: {unit:.0f} ms)")


if __name__ == "__main__":
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    sys.exit(main())
