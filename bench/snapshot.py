"""The cost of an object snapshot (memlens.snapshot): time and extra memory per million live
Python objects, under a running memlens.Tracker (`make bench` runs it on every CPython).

The heap: N live objects made while tracking (a third each str, bytearray and small class
instances, in lists held by a module global). Time is the wall clock of one snapshot (the
best run); extra memory is the process's peak RSS during any of the snapshots above its RSS
before the first (a snapshot that leaves memory behind costs the next one less above its own
start, not less in all), and "kept" what stays after the last. Linux: /proc/self/clear_refs
resets the peak. Time and extra memory are divided by the millions of objects live (tracked or
not: the whole heap is walked).

    python bench/snapshot.py [--objects 1000000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import gc
import sys
import time

import memlens


class Item:
    def __init__(self, n: int) -> None:
        self.n = n


HELD: list[list[object]] = []


def build(n: int) -> None:
    third = n // 3
    HELD.append([f"text {i}" for i in range(third)])
    HELD.append([bytearray(16) for _ in range(third)])
    HELD.append([Item(i) for i in range(third)])


def status_kib(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def reset_peak_rss() -> None:
    with open("/proc/self/clear_refs", "w") as clear:
        clear.write("5")  # VmHWM := VmRSS


def measure(objects: int, repeat: int) -> tuple[float, float, float, int, bool]:
    """(best seconds, extra MiB, kept MiB, objects live, complete) of `repeat` snapshots."""
    best = float("inf")
    with memlens.Tracker(None, snapshot_at_exit=False) as tracker:
        build(objects)
        gc.collect()
        reset_peak_rss()
        start_kib = status_kib("VmRSS")
        for _ in range(repeat):
            gc.collect()
            start = time.perf_counter()
            memlens.snapshot("bench")
            best = min(best, time.perf_counter() - start)
        extra = (status_kib("VmHWM") - start_kib) / 1024
        kept = (status_kib("VmRSS") - start_kib) / 1024
        live = len(gc.get_objects()) + sum(len(h) for h in HELD)  # GC objects + the strs etc.
    complete = all(s.complete for s in tracker.profile.snapshots)
    HELD.clear()
    return best, extra, kept, live, complete


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    seconds, extra_mib, kept_mib, live, complete = measure(args.objects, args.repeat)
    millions = live / 1e6
    version = f"{sys.version_info[0]}.{sys.version_info[1]}"
    print(
        f"snapshot, CPython {version}: {live:,} live objects: {seconds:.2f} s, "
        f"+{extra_mib:.0f} MiB peak RSS, {kept_mib:+.0f} MiB kept after {args.repeat}; "
        f"per million objects: {seconds / millions:.2f} s, +{extra_mib / millions:.0f} MiB"
        + ("" if complete else " (cut short by the budget)")
    )


if __name__ == "__main__":
    main()
