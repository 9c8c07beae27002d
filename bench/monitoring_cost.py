"""What sys.monitoring (PEP 669) would cost as the short walk's frame counter, on 3.12+.

The eval hook (PEP 523) counts frames for the deep-stack short walk; on 3.12+ it steps aside
on very deep stacks. The alternative counts PY_START, PY_RETURN and PY_UNWIND events. This
times calls with those events delivered to C callables that do nothing useful (`{}.get` takes
PY_START's 2 arguments, `slice` the 3 of PY_RETURN and PY_UNWIND), and with PY_START alone:
a lower bound on what a counter written in C would cost per call, next to the unprofiled call.

    python bench/monitoring_cost.py [--calls-depth N]
"""

from __future__ import annotations

import statistics
import sys
import time


def fib(n: int) -> int:
    return n if n < 2 else fib(n - 1) + fib(n - 2)


def calls_of(n: int) -> int:
    return 1 if n < 2 else 1 + calls_of(n - 1) + calls_of(n - 2)


def best_time(n: int, rounds: int = 5) -> float:
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        fib(n)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> int:
    if sys.version_info < (3, 12):
        print(f"sys.monitoring needs 3.12+; this is {sys.version.split()[0]}")
        return 0
    n = 25
    calls = calls_of(n)
    plain = best_time(n)
    line = f"{sys.version.split()[0]}: fib({n}), {calls} calls: plain {plain * 1e3:.1f} ms"
    line += f" ({plain / calls * 1e9:.0f} ns/call)"
    ev = sys.monitoring.events
    for name, events in (
        ("PY_START", ev.PY_START),
        ("PY_START+PY_RETURN+PY_UNWIND", ev.PY_START | ev.PY_RETURN | ev.PY_UNWIND),
    ):
        monitored = monitored_time(n, events)
        per_call = (monitored - plain) / calls * 1e9
        line += f"; {name} {monitored / plain:.2f}x (+{per_call:.0f} ns/call)"
    print(line)
    return 0


def monitored_time(n: int, events: int) -> float:
    mon = sys.monitoring
    tool = mon.PROFILER_ID
    mon.use_tool_id(tool, "memlens-bench")
    mon.register_callback(tool, mon.events.PY_START, {}.get)
    mon.register_callback(tool, mon.events.PY_RETURN, slice)
    mon.register_callback(tool, mon.events.PY_UNWIND, slice)
    mon.set_events(tool, events)
    try:
        return best_time(n)
    finally:
        mon.set_events(tool, 0)
        mon.free_tool_id(tool)


if __name__ == "__main__":
    sys.exit(main())
