"""pytest plugin: memory limits, leak checks and per-test memory reports (issue 6).

Registered through the `pytest11` entry point, so it is active after `pip install memlens`
(`-p no:memlens` turns it off).

    pytest --memlens                      track every test; a "memlens report" section lists the
                                          N tests with the highest peak (--memlens-top N, default 5)
                                          with their biggest allocating lines
    pytest --memlens-json PATH            also write per-test numbers as JSON (implies --memlens)
    @pytest.mark.limit_memory("24 MB")    fail if the bytes live at the test's high-watermark
                                          exceed 24 MB
    @pytest.mark.limit_leaks("1 MB", filter_fn=None)
                                          fail if any one stack still holds more than 1 MB when
                                          the test ends (after a gc.collect())
    --memlens-no-python-allocators        track the malloc family and mmap only (faster); the ini
                                          option `memlens_python_allocators = false` does the same

The markers work without --memlens: then only the marked tests are tracked.
`@pytest.mark.no_memlens` leaves a test untracked under --memlens (a test that starts its own
`memlens.Tracker` needs it: there is one tracker per process). Sizes take B,
KB/MB/GB/TB (decimal) and KiB/MiB/GiB/TiB (binary), any case, space optional; a bad size is a
collection error of the test's module.

What is measured: the call phase of each test, like pytest-memray. Fixture setup and teardown
are not tracked, so a session fixture that builds a big dataset is not charged to the first test
that uses it. Memory allocated before the test (imports, module globals, fixtures) does not count,
and frees of it during the test do not lower the test's numbers. Allocations of every thread during
the call count; subprocesses are not tracked. A test's numbers are those of its own stacks: what
pytest and pluggy allocate around the call (hook bookkeeping, output capture; a few KiB) is left
out of the peak, the totals, the leaks and the top lines. `leak_bytes` is what the test
allocated and still held when its call ended; only tests marked limit_leaks get a gc.collect()
first (a full collection per test would cost more than the tracking).

With pytest-xdist every worker tracks its own tests and sends each test's numbers to the
controller on its report (`report.memlens`, a dict); the controller alone prints the report and
writes the JSON.

JSON (`--memlens-json PATH`), version 1:

    {"memlens_json_version": 1, "memlens_version": "0.1.0", "python_allocators": true,
     "tests": [                            # one per tracked test, in the order they finished
        {"nodeid": "tests/test_x.py::test_big",
         "peak_bytes": int,                # bytes live at the test's high-watermark
         "alloc_bytes": int, "alloc_count": int,   # all the test allocated during the call
         "leak_bytes": int,                # allocated during the call, still live at its end
         "top_lines": [                    # biggest first, at most 5, by bytes at the peak
            {"file": str, "line": int, "function": str, "peak_bytes": int}],
         "limit_memory": int | null,       # the marker's limit in bytes
         "limit_leaks": int | null,
         "passed": bool,                   # the call phase passed, limits included
         "outcome": "passed" | "failed" | "skipped"}],   # the call phase's outcome
     "totals": {"tests": int, "passed": int, "failed": int, "skipped": int,
                "peak_bytes": int, "peak_nodeid": str | null,   # the highest test peak
                "alloc_bytes": int, "alloc_count": int, "leak_bytes": int}}   # sums

`top_lines` charges each allocation to its innermost Python line (the "self" numbers of
DESIGN.md), which is where it was made.
"""

from __future__ import annotations

import gc
import heapq
import json
import os
from collections.abc import Generator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from memlens.pytest_limits import (
    LeakFilter,
    Limit,
    display_path,
    leak_failure,
    memory_failure,
    own_stacks,
    own_usage,
    parse_limit,
)
from memlens.units import format_bytes

if TYPE_CHECKING:
    from memlens.model import Profile

JSON_VERSION = 1
TOP_LINES = 5  # per test, in the JSON
REPORT_LINES = 3  # per test, in the terminal report
# Stacks summed into a test's top lines: the biggest ones hold the peak, and a test with 100,000
# small stacks must not cost seconds.
_STACKS_FOR_LINES = 200
_MARKERS = (
    "no_memlens: do not track this test under --memlens, e.g. because it starts its own "
    "memlens.Tracker (one tracker per process) (memlens)",
    "limit_memory(limit): fail if the bytes live at the test's memory high-watermark exceed "
    "`limit`, e.g. '24 MB' or '10 MiB' (memlens)",
    "limit_leaks(limit, filter_fn=None): fail if any one stack leaks more than `limit` by the end "
    "of the test; filter_fn(stack) -> bool keeps a stack (memlens)",
)
_RESULT = pytest.StashKey["TestMemory"]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("memlens", "memory profiling with memlens")
    group.addoption(
        "--memlens",
        action="store_true",
        default=False,
        help="track the memory of every test and report the tests with the highest peak",
    )
    group.addoption(
        "--memlens-top",
        type=int,
        default=5,
        metavar="N",
        help="how many tests the memlens report lists (default 5, 0 for none)",
    )
    group.addoption(
        "--memlens-json",
        default=None,
        metavar="PATH",
        help="write per-test peak, total, leaked bytes and top lines as JSON (implies --memlens)",
    )
    group.addoption(
        "--memlens-no-python-allocators",
        action="store_true",
        default=False,
        help="do not trace Python's object allocators (faster; objects are seen through malloc)",
    )
    parser.addini(
        "memlens_python_allocators",
        type="bool",
        default=True,
        help="memlens traces Python's object allocators (exact per-object numbers); default true",
    )


def pytest_configure(config: pytest.Config) -> None:
    for line in _MARKERS:
        config.addinivalue_line("markers", line)
    config.pluginmanager.register(MemlensPlugin(config), "memlens-session")


@dataclass(frozen=True)
class Limits:
    memory: Limit | None = None
    leaks: Limit | None = None
    leak_filter: LeakFilter | None = None


@dataclass
class TestMemory:
    """One tracked test's numbers: what travels on the report and goes into the JSON."""

    __test__ = False  # not a test class, whatever pytest thinks of the name

    nodeid: str
    peak_bytes: int
    alloc_bytes: int
    alloc_count: int
    leak_bytes: int
    top_lines: list[dict[str, Any]] = field(default_factory=list)
    limit_memory: int | None = None
    limit_leaks: int | None = None
    passed: bool = False
    outcome: str = ""

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> TestMemory:
        return cls(**{name: raw[name] for name in cls.__dataclass_fields__ if name in raw})


def limits_of(item: pytest.Item) -> Limits:
    """The item's limit markers, parsed; ValueError names the marker and the problem."""
    memory = leaks = None
    leak_filter = None
    mark = item.get_closest_marker("limit_memory")
    if mark is not None:
        memory = _marker_limit(mark, allowed=())
    mark = item.get_closest_marker("limit_leaks")
    if (memory is not None or mark is not None) and item.get_closest_marker("no_memlens"):
        raise ValueError("@pytest.mark.no_memlens contradicts its limit_memory/limit_leaks marker")
    if mark is not None:
        leaks = _marker_limit(mark, allowed=("filter_fn",))
        leak_filter = mark.kwargs.get("filter_fn")
        if leak_filter is not None and not callable(leak_filter):
            raise ValueError(
                f"@pytest.mark.limit_leaks: filter_fn must be a function of a stack, "
                f"not {type(leak_filter).__name__}"
            )
    return Limits(memory, leaks, leak_filter)


def _marker_limit(mark: pytest.Mark, allowed: tuple[str, ...]) -> Limit:
    where = f"@pytest.mark.{mark.name}"
    unknown = sorted(set(mark.kwargs) - set(allowed))
    if unknown:
        raise ValueError(f"{where}: unexpected argument {unknown[0]!r}")
    if len(mark.args) != 1:
        raise ValueError(
            f"{where} takes one size, such as '10 MB' (got {len(mark.args)} arguments)"
        )
    try:
        return parse_limit(mark.args[0])
    except ValueError as error:
        raise ValueError(f"{where}: {error}") from None


class MemlensPlugin:
    """The session's state: options, and on the controller the tests' numbers."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.json_path: Path | None = None
        self.json_error: str | None = None
        json_option = config.getoption("memlens_json")
        if json_option:
            self.json_path = Path(json_option).absolute()
            if not self.json_path.parent.is_dir():
                raise pytest.UsageError(
                    f"--memlens-json: directory {self.json_path.parent} does not exist"
                )
        self.track_all: bool = bool(config.getoption("memlens")) or self.json_path is not None
        self.top: int = config.getoption("memlens_top")
        if self.top < 0:
            raise pytest.UsageError(f"--memlens-top: expected 0 or more tests, got {self.top}")
        self.python_allocators: bool = bool(config.getini("memlens_python_allocators")) and not (
            config.getoption("memlens_no_python_allocators")
        )
        self.is_worker = hasattr(config, "workerinput")  # a pytest-xdist worker
        self.root = str(config.rootpath)
        self.results: list[TestMemory] = []
        self._top_peaks: list[int] = []  # min-heap of the N highest peaks measured here
        self.untracked: dict[str, list[str]] = {}  # why -> the tests that could not be tracked
        if self.track_all:
            self._tracker_class()  # a missing native module is a usage error, before any test

    def _tracker_class(self) -> Any:
        try:
            from memlens import capture  # noqa: F401  (loaded before tracking, not during a test)
            from memlens.tracker import Tracker
        except ImportError as error:
            raise pytest.UsageError(
                f"memlens: the native tracker is not available: {error}"
            ) from None
        return Tracker

    # --- collection: a bad limit is an error of the test's module, reported before any run ---

    @pytest.hookimpl(wrapper=True)
    def pytest_make_collect_report(self, collector: pytest.Collector) -> Generator[None, Any, Any]:
        report: pytest.CollectReport = yield
        if not report.passed:
            return report
        problems = []
        for node in report.result:
            if isinstance(node, pytest.Item):
                try:
                    limits_of(node)
                except ValueError as error:
                    problems.append(f"{node.nodeid}: {error}")
        if problems:
            report.outcome = "failed"
            report.longrepr = "\n".join(problems)
            report.result = []
        return report

    # --- running: the tracker around the call phase --------------------------------------

    # trylast: the innermost wrapper, so other plugins' work around the call is not tracked
    @pytest.hookimpl(wrapper=True, trylast=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Generator[None, Any, Any]:
        limits = limits_of(item)
        marked = limits.memory is not None or limits.leaks is not None
        if not (marked or (self.track_all and not item.get_closest_marker("no_memlens"))):
            return (yield)
        problem = None
        try:
            tracker = self._tracker_class()(
                None, python_allocators=self.python_allocators, checkpoint_interval=0
            )
            tracker.__enter__()
        except (pytest.UsageError, RuntimeError, OSError) as error:
            # e.g. the whole run is already under `memlens run`: one tracker per process.
            problem = str(error)
        if problem is not None:
            self.untracked.setdefault(problem, []).append(item.nodeid)
            if marked:
                pytest.fail(f"memlens could not track this test: {problem}", pytrace=False)
            return (yield)

        test_error: BaseException | None = None
        try:
            try:
                result = yield
            except BaseException as error:  # the test's own failure, re-raised below
                test_error = error
            if limits.leaks is not None and test_error is None:
                gc.collect()  # cycles the test dropped are not leaks
        finally:
            tracker.__exit__(None, None, None)
        profile: Profile = tracker.profile

        item.stash[_RESULT] = self._measure(item.nodeid, profile, limits)
        if test_error is not None:
            raise test_error
        failures = []
        if limits.memory is not None:
            failures.append(memory_failure(profile, limits.memory, root=self.root))
        if limits.leaks is not None:
            failures.append(leak_failure(profile, limits.leaks, limits.leak_filter, root=self.root))
        message = "\n\n".join(f for f in failures if f)
        if message:
            pytest.fail(message, pytrace=False)
        return result

    def _measure(self, nodeid: str, profile: Profile, limits: Limits) -> TestMemory:
        usage = own_usage(profile)
        return TestMemory(
            nodeid=nodeid,
            peak_bytes=usage.peak_bytes,
            alloc_bytes=usage.alloc_bytes,
            alloc_count=usage.alloc_count,
            leak_bytes=usage.leak_bytes,
            top_lines=top_lines(profile) if self._wants_lines(usage.peak_bytes) else [],
            limit_memory=limits.memory.bytes if limits.memory else None,
            limit_leaks=limits.leaks.bytes if limits.leaks else None,
        )

    def _wants_lines(self, peak_bytes: int) -> bool:
        """Whether this test's top lines can be shown: the JSON has every test's, the report only
        the top N by peak. The per-line index is most of the per-test cost, so it is built only
        for a test that is among this process's top N so far (the overall top N of an xdist run
        are among the union of the workers')."""
        if peak_bytes <= 0:
            return False
        if self.json_path is not None:
            return True
        if self.top == 0:
            return False
        if len(self._top_peaks) < self.top:
            heapq.heappush(self._top_peaks, peak_bytes)
            return True
        if peak_bytes > self._top_peaks[0]:
            heapq.heapreplace(self._top_peaks, peak_bytes)
            return True
        return False

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        report = yield
        measured = item.stash.get(_RESULT, None)
        if call.when == "call" and measured is not None:
            measured.passed = report.passed
            measured.outcome = report.outcome
            # An extra report attribute: pytest-xdist carries it to the controller.
            report.memlens = asdict(measured)  # type: ignore[attr-defined]
        return report

    # --- reporting: on the controller (or the only process) -------------------------------

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        raw = getattr(report, "memlens", None)
        if report.when == "call" and isinstance(raw, dict) and not self.is_worker:
            self.results.append(TestMemory.from_dict(raw))

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not self.track_all or self.is_worker:
            return
        write = terminalreporter.write_line
        terminalreporter.write_sep("=", "memlens report")
        if not self.results:
            write("no test was tracked")
        ranked = sorted(self.results, key=lambda r: r.peak_bytes, reverse=True)[: self.top]
        if ranked:
            write(
                f"{len(ranked)} of {len(self.results)} tracked tests with the highest peak "
                "(call phase only):"
            )
        for result in ranked:
            write("")
            write(result.nodeid)
            write(
                f"    peak {format_bytes(result.peak_bytes)}, allocated "
                f"{format_bytes(result.alloc_bytes)} in {result.alloc_count} allocations, "
                f"leaked {format_bytes(result.leak_bytes)}"
            )
            for line in result.top_lines[:REPORT_LINES]:
                where = f"{display_path(line['file'], self.root)}:{line['line']}"
                write(f"    {format_bytes(line['peak_bytes']):>10}  {where} in {line['function']}")
        for problem, nodeids in self.untracked.items():
            were = "test was" if len(nodeids) == 1 else "tests were"
            write(f"{len(nodeids)} {were} not tracked: {problem}")
        if self.json_error is not None:
            write(f"\nmemlens: error: {self.json_error}", red=True)
        elif self.json_path is not None:
            write(f"\nmemlens JSON report: {self.json_path}")

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if self.json_path is None or self.is_worker:
            return
        document = json_report(self.results, python_allocators=self.python_allocators)
        temp = self.json_path.with_name(f".{self.json_path.name}.{os.getpid()}.tmp")
        try:
            temp.write_text(json.dumps(document, indent=1) + "\n")
            temp.replace(self.json_path)
        except OSError as error:
            self.json_error = f"cannot write {self.json_path}: {error.strerror or error}"
            temp.unlink(missing_ok=True)
            if session.exitstatus == pytest.ExitCode.OK:
                session.exitstatus = pytest.ExitCode.INTERNAL_ERROR  # CI must not miss it


def top_lines(profile: Profile, limit: int = TOP_LINES) -> list[dict[str, Any]]:
    """The lines holding the most bytes at the peak, each allocation charged to its innermost
    Python line, over the test's own stacks (not pytest's bookkeeping during the call)."""
    by_line: dict[tuple[str, int, str], int] = {}
    for stack in own_stacks(profile, "peak_bytes", limit=_STACKS_FOR_LINES):
        if stack.frames:
            innermost = stack.frames[-1]
            key = (innermost.file, innermost.line, innermost.function)
            by_line[key] = by_line.get(key, 0) + stack.usage.peak_bytes
    ranked = sorted(by_line.items(), key=lambda item: item[1], reverse=True)[:limit]
    return [
        {"file": file, "line": line, "function": function, "peak_bytes": peak}
        for (file, line, function), peak in ranked
    ]


def json_report(results: list[TestMemory], *, python_allocators: bool) -> dict[str, Any]:
    from memlens import __version__

    highest = max(results, key=lambda r: r.peak_bytes, default=None)
    return {
        "memlens_json_version": JSON_VERSION,
        "memlens_version": __version__,
        "python_allocators": python_allocators,
        "tests": [asdict(r) for r in results],
        "totals": {
            "tests": len(results),
            "passed": sum(r.passed for r in results),
            "failed": sum(r.outcome == "failed" for r in results),
            "skipped": sum(r.outcome == "skipped" for r in results),
            "peak_bytes": highest.peak_bytes if highest else 0,
            "peak_nodeid": highest.nodeid if highest else None,
            "alloc_bytes": sum(r.alloc_bytes for r in results),
            "alloc_count": sum(r.alloc_count for r in results),
            "leak_bytes": sum(r.leak_bytes for r in results),
        },
    }
