"""memlens side by side with Memray and tracemalloc, in one run: `make bench`.

Every workload of bench/workloads.py runs unprofiled and under each profiler, interleaved
(one round runs everything once, so drift on a shared machine hits all modes alike), several
rounds; the table shows the median wall time of each mode as a ratio to the unprofiled run, the
geometric means, memlens's capture sizes and its start-up time. Results go to
bench/results/latest.json, and the memlens captures to bench/results/<workload>.msgpack (for
timing the reports on them).

    python bench/run.py [--rounds N] [--workloads a,b] [--modes m1,m2] [--results DIR]

It runs on the interpreter that runs it (Memray must be installed there): `make bench` runs it
once per supported CPython, each from that version's .venv-X.Y, and bench/compare.py puts the
versions side by side. Besides time it records each child's peak RSS, so the table also shows
what every profiler costs in memory (extra RSS over the unprofiled run).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "results"  # --results overrides
WORKLOADS_SCRIPT = BENCH / "workloads.py"
PYTHON = sys.executable
MiB = 2**20

# Budgets from DESIGN.md "Performance budgets".
BUDGET_GEOMEAN = 1.5  # memlens (Python allocators on), geometric mean over the workloads
BUDGET_FAST_GEOMEAN = 1.2  # memlens --no-python-allocators
BUDGET_CAPTURE = MiB
BUDGET_STARTUP_MS = 50.0


def workload_names() -> list[str]:
    sys.path.insert(0, str(BENCH))
    from workloads import WORKLOADS

    return list(WORKLOADS)


def mode_command(mode: str, workload: str, output: Path) -> list[str]:
    """The command line of one workload under one mode; output is the profiler's file."""
    script = [str(WORKLOADS_SCRIPT), workload]
    memlens = [PYTHON, "-m", "memlens", "run", "-o", str(output)]
    memray = [PYTHON, "-m", "memray", "run", "-q", "-f", "-o", str(output)]
    commands = {
        "python": [PYTHON, *script],
        "memlens": [*memlens, *script],
        "memlens-fast": [*memlens, "--no-python-allocators", *script],
        "memray": [*memray, *script],
        "memray-py": [*memray, "--trace-python-allocators", *script],
        # one frame, tracemalloc's default (25 frames, closer to full stacks, is ~3x slower
        # still on deep stacks and would take most of the bench's time budget)
        "tracemalloc": [PYTHON, "-X", "tracemalloc", *script],
    }
    return commands[mode]


MODES = ["python", "memlens", "memlens-fast", "memray", "memray-py", "tracemalloc"]
OUTPUT_SUFFIX = {"memlens": ".msgpack", "memlens-fast": ".fast.msgpack"}


# Every mode runs as it would for a user: with its modules' bytecode cached (an installed
# package has its .pyc files; PYTHONDONTWRITEBYTECODE, if set here, would make each run compile
# memlens's own modules again, ~8 ms). The first round writes the caches; medians drop it.
CHILD_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def timed(command: list[str], cwd: Path) -> tuple[float, int]:
    """Wall seconds and peak RSS (bytes) of one child, waited for with wait4 for its rusage."""
    with tempfile.TemporaryFile() as errors:
        started = time.perf_counter()
        child = subprocess.Popen(
            command, cwd=cwd, env=CHILD_ENV, stdout=subprocess.DEVNULL, stderr=errors
        )
        _, status, usage = os.wait4(child.pid, 0)
        elapsed = time.perf_counter() - started
        child.returncode = os.waitstatus_to_exitcode(status)
        if child.returncode != 0:
            errors.seek(0)
            text = errors.read().decode(errors="replace")
            raise SystemExit(f"bench: {' '.join(command)} failed ({child.returncode}):\n{text}")
    return elapsed, usage.ru_maxrss * 1024


def startup_ms(rounds: int, scratch: Path) -> dict[str, float]:
    """Median wall time of `python -c pass` and `memlens run -c pass`, in milliseconds."""
    plain = [PYTHON, "-c", "pass"]
    tracked = [PYTHON, "-m", "memlens", "run", "-o", str(scratch / "startup.msgpack")]
    tracked += ["-c", "pass"]
    times: dict[str, list[float]] = {"python": [], "memlens": []}
    for _ in range(rounds):
        times["python"].append(timed(plain, scratch)[0])
        times["memlens"].append(timed(tracked, scratch)[0])
    python, memlens = (statistics.median(times[k]) * 1000 for k in ("python", "memlens"))
    return {"python_ms": python, "memlens_ms": memlens, "overhead_ms": memlens - python}


def geomean(values: list[float]) -> float:
    return math.exp(sum(map(math.log, values)) / len(values)) if values else math.nan


def format_size(n: int) -> str:
    return f"{n / 1024:.0f} KiB" if n < MiB else f"{n / MiB:.1f} MiB"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="repetitions (median is kept)")
    parser.add_argument("--workloads", default="", help="comma-separated subset")
    parser.add_argument("--modes", default="", help="comma-separated subset of " + ",".join(MODES))
    parser.add_argument("--results", type=Path, default=RESULTS, help="where results go")
    return parser.parse_args()


# per workload, per mode: seconds of each round, peak RSS of each round, output bytes
Times = dict[str, dict[str, list[float]]]
Rss = dict[str, dict[str, list[int]]]
Sizes = dict[str, dict[str, int]]


def measure(
    workloads: list[str], modes: list[str], rounds: int, results: Path
) -> tuple[Times, Rss, Sizes, dict[str, float]]:
    """Every (workload, mode) run `rounds` times: seconds, peak RSS, output size, startup."""
    times: Times = {w: {m: [] for m in modes} for w in workloads}
    rss: Rss = {w: {m: [] for m in modes} for w in workloads}
    sizes: Sizes = {w: {} for w in workloads}
    with tempfile.TemporaryDirectory(prefix="memlens-bench-") as scratch_name:
        scratch = Path(scratch_name)
        for round_number in range(rounds):
            for workload in workloads:
                for mode in modes:
                    suffix = OUTPUT_SUFFIX.get(mode, ".bin")
                    keep = mode in OUTPUT_SUFFIX
                    output = (results if keep else scratch) / f"{workload}{suffix}"
                    elapsed, peak_rss = timed(mode_command(mode, workload, output), scratch)
                    times[workload][mode].append(elapsed)
                    rss[workload][mode].append(peak_rss)
                    if mode != "python" and mode != "tracemalloc":
                        sizes[workload][mode] = output.stat().st_size
                        if not keep:
                            output.unlink()
            print(f"round {round_number + 1}/{rounds} done", file=sys.stderr, flush=True)
        startup = startup_ms(max(5, 3 * rounds), scratch)
    return times, rss, sizes, startup


def main() -> int:
    args = parse_args()
    results = args.results.resolve()  # the children run in a scratch directory
    workloads = [
        w for w in workload_names() if not args.workloads or w in args.workloads.split(",")
    ]
    modes = [m for m in MODES if not args.modes or m in args.modes.split(",") or m == "python"]
    results.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    times, rss, sizes, startup = measure(workloads, modes, args.rounds, results)

    medians = {
        w: {m: statistics.median(t) for m, t in by_mode.items()} for w, by_mode in times.items()
    }
    ratios = {
        w: {m: medians[w][m] / medians[w]["python"] for m in modes if m != "python"}
        for w in workloads
    }
    geomeans = {m: geomean([ratios[w][m] for w in workloads]) for m in modes if m != "python"}
    extra_rss = {
        w: {
            m: int(statistics.median(by_mode[m]) - statistics.median(by_mode["python"]))
            for m in modes
            if m != "python"
        }
        for w, by_mode in rss.items()
    }
    print_table(workloads, modes, medians, ratios, geomeans, sizes, startup)
    print_rss(workloads, modes, extra_rss)
    verdicts = check_budgets(workloads, modes, ratios, geomeans, sizes, startup, extra_rss)
    for line in verdicts:
        print(line)
    print(f"\n(total bench time {time.monotonic() - started:.0f} s)")

    report = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "rounds": args.rounds,
        "seconds": times,
        "median_seconds": medians,
        "ratio_to_python": ratios,
        "geomean_ratio": geomeans,
        "output_bytes": sizes,
        "peak_rss_bytes": rss,
        "extra_rss_bytes": extra_rss,
        "startup": startup,
        "budgets": verdicts,
    }
    (results / "latest.json").write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {results / 'latest.json'} and the memlens captures in {results}/")
    return 0


def print_table(
    workloads: list[str],
    modes: list[str],
    medians: dict[str, dict[str, float]],
    ratios: dict[str, dict[str, float]],
    geomeans: dict[str, float],
    sizes: dict[str, dict[str, int]],
    startup: dict[str, float],
) -> None:
    profiled = [m for m in modes if m != "python"]
    header = ["workload", "python"] + profiled + ["memlens capture", "fast capture"]
    rows = [header]
    for w in workloads:
        row = [w, f"{medians[w]['python']:.2f} s"]
        row += [f"{ratios[w][m]:.2f}x" for m in profiled]
        row += [format_size(sizes[w][k]) if k in sizes[w] else "-" for k in OUTPUT_SUFFIX]
        rows.append(row)
    rows.append(["geomean", ""] + [f"{geomeans[m]:.2f}x" for m in profiled] + ["", ""])
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    print("\nwall time, median, as a ratio to the unprofiled run")
    for n, row in enumerate(rows):
        print(
            "  ".join(
                cell.ljust(widths[i]) if i == 0 else cell.rjust(widths[i])
                for i, cell in enumerate(row)
            )
        )
        if n == 0 or n == len(rows) - 2:
            print("  ".join("-" * width for width in widths))
    print(
        f"\nstart-up: python -c pass {startup['python_ms']:.0f} ms, "
        f"memlens run -c pass {startup['memlens_ms']:.0f} ms "
        f"(+{startup['overhead_ms']:.0f} ms)"
    )


def print_rss(workloads: list[str], modes: list[str], extra_rss: dict[str, dict[str, int]]) -> None:
    profiled = [m for m in modes if m != "python"]
    print("\nextra peak RSS over the unprofiled run, median (MiB)")
    print("  ".join(["workload".ljust(10)] + [m.rjust(12) for m in profiled]))
    for w in workloads:
        cells = [f"{extra_rss[w][m] / MiB:+.1f}".rjust(12) for m in profiled]
        print("  ".join([w.ljust(10)] + cells))


def check_budgets(
    workloads: list[str],
    modes: list[str],
    ratios: dict[str, dict[str, float]],
    geomeans: dict[str, float],
    sizes: dict[str, dict[str, int]],
    startup: dict[str, float],
    extra_rss: dict[str, dict[str, int]],
) -> list[str]:
    """One line per DESIGN.md budget: ok or OVER, with the numbers."""
    lines = ["", "budgets (DESIGN.md):"]

    def verdict(ok: bool, text: str) -> None:
        lines.append(f"  {'ok  ' if ok else 'OVER'}  {text}")

    if "memlens" in modes and "memray" in modes:
        worse = [w for w in workloads if ratios[w]["memlens"] > ratios[w]["memray"]]
        verdict(
            not worse,
            "memlens <= memray default on every workload"
            + (f" (not on: {', '.join(worse)})" if worse else ""),
        )
    if "memlens" in modes:
        verdict(
            geomeans["memlens"] <= BUDGET_GEOMEAN,
            f"memlens geomean {geomeans['memlens']:.2f}x <= {BUDGET_GEOMEAN}x",
        )
    if "memlens-fast" in modes:
        verdict(
            geomeans["memlens-fast"] <= BUDGET_FAST_GEOMEAN,
            f"memlens --no-python-allocators geomean {geomeans['memlens-fast']:.2f}x "
            f"<= {BUDGET_FAST_GEOMEAN}x",
        )
    if "memlens" in modes and "memray" in modes:
        # A few MiB either way is allocator noise, not the tracker's tables.
        heavier = [
            w for w in workloads if extra_rss[w]["memlens"] > extra_rss[w]["memray"] + 2 * MiB
        ]
        verdict(
            not heavier,
            "memlens extra RSS <= memray default's (+2 MiB) on every workload"
            + (f" (not on: {', '.join(heavier)})" if heavier else ""),
        )
    biggest = max(
        (s for w in workloads for m, s in sizes[w].items() if m in OUTPUT_SUFFIX), default=0
    )
    verdict(biggest < BUDGET_CAPTURE, f"largest memlens capture {format_size(biggest)} < 1 MiB")
    verdict(
        startup["overhead_ms"] < BUDGET_STARTUP_MS,
        f"start-up overhead {startup['overhead_ms']:.0f} ms < {BUDGET_STARTUP_MS:.0f} ms",
    )
    return lines


if __name__ == "__main__":
    sys.exit(main())
