"""pytest plugin: memory limits, leak checks and per-test memory reports.

Registered through the `pytest11` entry point, so it is active after `pip install memlens`
(`-p no:memlens` turns it off). A drop-in for pytest-memray: the same markers, flags and
verdicts, with `memlens` in the names where pytest-memray has `memray`.

    pytest --memlens                      track every test (or the ini option `memlens = true`);
                                          a "memlens report" section lists the tests with the
                                          highest peak and their biggest allocating lines
    --most-allocations N                  how many tests that report lists (default 5, 0 = all)
    --hide-memlens-summary                no report section (ini `hide_memlens_summary = true`)
    --stacks N                            frames shown per stack in a failure (default by
                                          verbosity: -q 1, 5, -v 10, -vv all); -q/-v/-vv also
                                          list 1/3/10/all stacks, with "...and N more"
    --fail-on-increase                    fail a tracked test whose peak grew since the previous
                                          run (peaks kept in pytest's cache, .pytest_cache)
    --memlens-bin-path DIR                keep each tracked test's capture in DIR (created if
    --memlens-bin-prefix P                missing) as P + the test id + ".msgpack"; implies
                                          --memlens. Open it in the editor or `memlens flamegraph`
    --memlens-json PATH                   also write per-test numbers as JSON (implies --memlens)
    @pytest.mark.limit_memory("24 MB", current_thread_only=False)
                                          fail if the bytes live at the test's high-watermark
                                          exceed 24 MB
    @pytest.mark.limit_leaks("1 MB", filter_fn=None, current_thread_only=False)
                                          fail if any one stack still holds more than 1 MB when
                                          the test ends (after a gc.collect()); filter_fn(stack)
                                          gets each such stack (`stack.frames`, innermost first,
                                          each with .function, .filename, .lineno) and keeps it
                                          by returning True
    @pytest.mark.limit_leaked_objects(100, current_thread_only=False)
                                          fail if more than 100 Python objects the test
                                          allocated are still alive when it ends (after a
                                          gc.collect()); lists their types, lines and holders
    --memlens-no-python-allocators        track the malloc family and mmap only (faster); the ini
                                          option `memlens_python_allocators = false` does the same

The markers work without --memlens: then only the marked tests are tracked. One limit marker
per test: two are a collection error. `@pytest.mark.no_memlens` leaves a test untracked under
--memlens (a test that starts its own `memlens.Tracker` needs it: there is one tracker per
process). Sizes are read as pytest-memray reads them: B, and KB/MB/GB/TB/PB binary (1 MB =
1,048,576 B), like KiB/MiB/GiB/TiB/PiB; any case, space optional; a bad size is a collection
error of the test's module.

A memory failure (a limit, or --fail-on-increase) is its own outcome: "M" in the progress line,
"MEMORY PROBLEMS" in the short summary and under -v. The report lists the tests that passed and
those with memory problems; other failures are left out (their numbers stop at the error).

What is measured: the call phase of each test, like pytest-memray. Fixture setup and teardown
are not tracked, so a session fixture that builds a big dataset is not charged to the first test
that uses it. Memory allocated before the test (imports, module globals, fixtures) does not count,
and frees of it during the test do not lower the test's numbers. On the test's thread, only what
is allocated under the test function counts: pytest's bookkeeping and other plugins' hook
wrappers around the call (flaky, anyio, ...) are left out of the peak, the totals, the leaks and
the top lines. Allocations of other threads during the call count unless the marker says
`current_thread_only=True`; subprocesses are not tracked. `leak_bytes` is what the test
allocated and still held when its call ended; only tests marked limit_leaks get a gc.collect()
first (a full collection per test would cost more than the tracking).

With pytest-xdist every worker tracks its own tests and sends each test's numbers to the
controller on its report (`report.memlens`, a dict); the controller alone prints the report,
writes the JSON and stores the peaks for --fail-on-increase.

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
         "memory_problem": bool,           # failed by a limit or --fail-on-increase
         "passed": bool,                   # the call phase passed, limits included
         "outcome": "passed" | "failed" | "skipped"}],   # the call phase's outcome
     "totals": {"tests": int, "passed": int, "failed": int, "skipped": int,
                "peak_bytes": int, "peak_nodeid": str | null,   # the highest test peak
                "alloc_bytes": int, "alloc_count": int, "leak_bytes": int}}   # sums

`top_lines` is the self view of docs/design.md, "Per-line numbers": each allocation is charged to
its innermost Python line, which is where it was made.
"""

from __future__ import annotations

import gc
import heapq
import json
import re
import threading
from collections.abc import Generator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import CodeType
from typing import TYPE_CHECKING, Any

import pytest

from memlens.files import reason, write_atomically
from memlens.pytest_history import PeakHistory
from memlens.pytest_limits import (
    Focus,
    LeakFilter,
    Limit,
    Listing,
    Scope,
    display_path,
    leak_failure,
    leaked_objects_failure,
    memory_failure,
    own_profile,
    own_usage,
    parse_limit,
)
from memlens.units import format_bytes

if TYPE_CHECKING:
    from memlens.model import Profile

JSON_VERSION = 1
TOP_LINES = 5  # per test, in the JSON
_LIMIT_MARKERS = ("limit_memory", "limit_leaks", "limit_leaked_objects")
_MARKERS = (
    "no_memlens: do not track this test under --memlens, e.g. because it starts its own "
    "memlens.Tracker (one tracker per process) (memlens)",
    "limit_memory(limit, current_thread_only=False): fail if the bytes live at the test's memory "
    "high-watermark exceed `limit`, e.g. '24 MB' (binary: 24 MiB) (memlens)",
    "limit_leaks(limit, filter_fn=None, current_thread_only=False): fail if any one stack leaks "
    "more than `limit` by the end of the test; filter_fn(stack) -> bool keeps a stack (memlens)",
    "limit_leaked_objects(count, current_thread_only=False): fail if more than `count` Python "
    "objects the test allocated are still alive when it ends (after a gc.collect()); the "
    "failure names their types, lines and holders (memlens)",
)
_RESULT = pytest.StashKey["TestMemory"]()
_UNSAFE_IN_FILE_NAMES = re.compile(r"[^A-Za-z0-9._-]+")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("memlens", "memory profiling with memlens")
    group.addoption(
        "--memlens",
        action="store_true",
        default=False,
        help="track the memory of every test and report the tests with the highest peak",
    )
    group.addoption(
        "--most-allocations",
        type=int,
        default=5,
        metavar="N",
        help="how many tests the memlens report lists (default 5, 0 for all)",
    )
    group.addoption(
        "--hide-memlens-summary",
        action="store_true",
        default=False,
        help="do not print the memlens report at the end of the run",
    )
    group.addoption(
        "--stacks",
        type=int,
        default=None,
        metavar="N",
        help="frames shown per stack in a memory failure (default: 5; -q 1, -v 10, -vv all)",
    )
    group.addoption(
        "--fail-on-increase",
        action="store_true",
        default=False,
        help="fail a tracked test whose peak is higher than in the previous run",
    )
    group.addoption(
        "--memlens-bin-path",
        default=None,
        metavar="DIR",
        help="keep each tracked test's capture in DIR (implies --memlens)",
    )
    group.addoption(
        "--memlens-bin-prefix",
        default="",
        metavar="PREFIX",
        help="prefix of the capture files in --memlens-bin-path (default none)",
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
    _add_ini_options(parser)


def _add_ini_options(parser: pytest.Parser) -> None:
    parser.addini("memlens", type="bool", default=False, help="track every test (as --memlens)")
    parser.addini(
        "hide_memlens_summary",
        type="bool",
        default=False,
        help="do not print the memlens report (as --hide-memlens-summary)",
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
    """A test's limit marker, parsed (all None for an unmarked test)."""

    memory: Limit | None = None
    leaks: Limit | None = None
    leak_filter: LeakFilter | None = None
    leaked_objects: int | None = None  # limit_leaked_objects
    current_thread_only: bool = False

    @property
    def marked(self) -> bool:
        return self.memory is not None or self.leaks is not None or self.leaked_objects is not None


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
    memory_problem: bool = False
    passed: bool = False
    outcome: str = ""

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> TestMemory:
        return cls(**{name: raw[name] for name in cls.__dataclass_fields__ if name in raw})


def limits_of(item: pytest.Item) -> Limits:
    """The item's limit marker, parsed; ValueError names the marker and the problem."""
    marks = [m for m in item.iter_markers() if m.name in _LIMIT_MARKERS]
    if not marks:
        return Limits()
    if len(marks) > 1:
        found = ", ".join(f"@pytest.mark.{m.name}" for m in reversed(marks))
        raise ValueError(f"one limit marker per test, found {len(marks)}: {found}")
    mark = marks[0]
    if item.get_closest_marker("no_memlens"):
        raise ValueError(f"@pytest.mark.no_memlens contradicts its @pytest.mark.{mark.name}")
    where = f"@pytest.mark.{mark.name}"
    if mark.name == "limit_leaked_objects":
        return _leaked_objects_limit(mark, where)
    allowed = {"current_thread_only"} | ({"filter_fn"} if mark.name == "limit_leaks" else set())
    unknown = sorted(set(mark.kwargs) - allowed)
    if unknown:
        raise ValueError(f"{where}: unexpected argument {unknown[0]!r}")
    if len(mark.args) != 1:
        raise ValueError(
            f"{where} takes one size, such as '10 MB' (got {len(mark.args)} arguments)"
        )
    try:
        limit = parse_limit(mark.args[0])
    except ValueError as error:
        raise ValueError(f"{where}: {error}") from None
    current_thread_only = mark.kwargs.get("current_thread_only", False)
    if not isinstance(current_thread_only, bool):
        raise ValueError(f"{where}: current_thread_only must be True or False")
    if mark.name == "limit_memory":
        return Limits(memory=limit, current_thread_only=current_thread_only)
    leak_filter = mark.kwargs.get("filter_fn")
    if leak_filter is not None and not callable(leak_filter):
        raise ValueError(
            f"{where}: filter_fn must be a function of a stack, not {type(leak_filter).__name__}"
        )
    return Limits(leaks=limit, leak_filter=leak_filter, current_thread_only=current_thread_only)


def _leaked_objects_limit(mark: pytest.Mark, where: str) -> Limits:
    unknown = sorted(set(mark.kwargs) - {"current_thread_only"})
    if unknown:
        raise ValueError(f"{where}: unexpected argument {unknown[0]!r}")
    if len(mark.args) != 1 or type(mark.args[0]) is not int or mark.args[0] < 0:
        raise ValueError(f"{where} takes one count of objects, an int >= 0, such as 100")
    current_thread_only = mark.kwargs.get("current_thread_only", False)
    if not isinstance(current_thread_only, bool):
        raise ValueError(f"{where}: current_thread_only must be True or False")
    return Limits(leaked_objects=mark.args[0], current_thread_only=current_thread_only)


def capture_file_name(prefix: str, nodeid: str) -> str:
    """`prefix` + the test id with anything but letters, digits and ._- made `_` + .msgpack."""
    return f"{prefix}{_UNSAFE_IN_FILE_NAMES.sub('_', nodeid)[:200]}.msgpack"


class MemlensPlugin:
    """The session's state: options, and on the controller the tests' numbers."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.json_path = self._json_path(config.getoption("memlens_json"))
        self.json_error: str | None = None
        self.bin_path = self._bin_path(config.getoption("memlens_bin_path"))
        self.bin_prefix: str = config.getoption("memlens_bin_prefix")
        self.track_all: bool = (
            bool(config.getoption("memlens"))
            or bool(config.getini("memlens"))
            or self.json_path is not None
            or self.bin_path is not None
        )
        self.top: int = config.getoption("most_allocations")
        if self.top < 0:
            raise pytest.UsageError(f"--most-allocations: expected 0 or more, got {self.top}")
        self.show_summary = not (
            config.getoption("hide_memlens_summary") or config.getini("hide_memlens_summary")
        )
        frames = config.getoption("stacks")
        if frames is not None and frames < 1:
            raise pytest.UsageError(f"--stacks: expected 1 or more frames, got {frames}")
        self.listing = Listing.for_verbosity(int(config.getoption("verbose")), frames)
        self.history = self._history(config) if config.getoption("fail_on_increase") else None
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

    @staticmethod
    def _json_path(option: str | None) -> Path | None:
        if not option:
            return None
        path = Path(option).absolute()
        if not path.parent.is_dir():
            raise pytest.UsageError(f"--memlens-json: directory {path.parent} does not exist")
        return path

    @staticmethod
    def _bin_path(option: str | None) -> Path | None:
        if not option:
            return None
        path = Path(option).absolute()
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise pytest.UsageError(
                f"--memlens-bin-path: cannot create {path}: {reason(error)}"
            ) from None
        return path

    @staticmethod
    def _history(config: pytest.Config) -> PeakHistory:
        cache = getattr(config, "cache", None)
        if cache is None:
            raise pytest.UsageError(
                "--fail-on-increase keeps the peaks in pytest's cache, which is disabled "
                "(-p no:cacheprovider)"
            )
        return PeakHistory(cache)

    def _tracker_class(self) -> Any:
        try:
            # Everything the plugin needs after a test is imported now: an import during a
            # test's call would be charged to it (numpy is a few MiB).
            from memlens import capture  # noqa: F401
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
        marked = limits.marked
        if not (marked or (self.track_all and not item.get_closest_marker("no_memlens"))):
            return (yield)
        # the test function's code (a bound method's too); None for doctests and other items
        code = getattr(getattr(item, "obj", None), "__code__", None)
        scope = Scope(
            Focus.of(code),
            threading.current_thread().name,
            limits.current_thread_only,
        )
        tracker, problem = self._start(item, scope, code, limits.leaked_objects is not None)
        if tracker is None:
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
            if (limits.leaks is not None or limits.leaked_objects is not None) and not test_error:
                gc.collect()  # cycles the test dropped are not leaks
        finally:
            self._stop(item, tracker)
        profile = own_profile(tracker.profile, scope)
        measured = item.stash[_RESULT] = self._measure(item.nodeid, profile, limits)
        if test_error is not None:
            raise test_error
        message = self._memory_problems(
            item.nodeid, measured.peak_bytes, profile, limits, scope.focus
        )
        if message:
            measured.memory_problem = True
            pytest.fail(message, pytrace=False)
        return result

    def _start(
        self, item: pytest.Item, scope: Scope, code: CodeType | None, objects: bool
    ) -> tuple[Any, str]:
        """A started Tracker, or None and why it could not start. `objects`: take an object
        snapshot at its end (it costs; only limit_leaked_objects asks)."""
        options: dict[str, Any] = {
            "current_thread_only": scope.current_thread_only,
            "snapshot_at_exit": objects,
        }
        if code is not None:
            options["focus"] = code  # only the test's own frames count on its thread
        output = None
        if self.bin_path is not None:
            output = self.bin_path / capture_file_name(self.bin_prefix, item.nodeid)
        try:
            tracker = self._tracker_class()(
                output,
                python_allocators=self.python_allocators,
                checkpoint_interval=0,
                **options,
            )
            tracker.__enter__()
        except (pytest.UsageError, RuntimeError, OSError) as error:
            # e.g. the whole run is already under `memlens run`: one tracker per process.
            return None, str(error)
        return tracker, ""

    def _stop(self, item: pytest.Item, tracker: Any) -> None:
        try:
            tracker.__exit__(None, None, None)
        except OSError as error:  # the capture file could not be written; the numbers are kept
            why = f"capture not written to {self.bin_path}: {reason(error)}"
            self.untracked.setdefault(why, []).append(item.nodeid)

    def _memory_problems(
        self, nodeid: str, peak_bytes: int, profile: Profile, limits: Limits, focus: Focus | None
    ) -> str:
        """The failure message of the test's limits and --fail-on-increase ("" if none)."""
        failures = []
        listing, root = self.listing, self.root
        if limits.memory is not None:
            failures.append(
                memory_failure(profile, limits.memory, listing=listing, root=root, focus=focus)
            )
        if limits.leaks is not None:
            failures.append(
                leak_failure(
                    profile,
                    limits.leaks,
                    limits.leak_filter,
                    listing=listing,
                    root=root,
                    focus=focus,
                )
            )
        if limits.leaked_objects is not None:
            failures.append(
                leaked_objects_failure(
                    profile, limits.leaked_objects, listing=listing, root=root, focus=focus
                )
            )
        if self.history is not None:
            failures.append(self.history.increase(nodeid, peak_bytes))
        return "\n\n".join(f for f in failures if f)

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
        if self.json_path is not None or self.top == 0:
            return True
        if not self.show_summary:
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

    def pytest_report_teststatus(
        self, report: pytest.TestReport, config: pytest.Config
    ) -> tuple[str, str, tuple[str, dict[str, bool]]] | None:
        """A memory failure is its own outcome, as in pytest-memray: "M" and MEMORY PROBLEMS."""
        raw = getattr(report, "memlens", None)
        if report.when == "call" and isinstance(raw, dict) and raw.get("memory_problem"):
            return "failed", "M", ("MEMORY PROBLEMS", {"red": True})
        return None

    # --- reporting: on the controller (or the only process) -------------------------------

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        raw = getattr(report, "memlens", None)
        if report.when == "call" and isinstance(raw, dict) and not self.is_worker:
            result = TestMemory.from_dict(raw)
            self.results.append(result)
            if self.history is not None and result.passed:
                self.history.record(result.nodeid, result.peak_bytes)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.is_worker:
            return
        if self.track_all and self.show_summary:
            self._write_report(terminalreporter)
        for problem, nodeids in self.untracked.items():
            were = "test was" if len(nodeids) == 1 else "tests were"
            terminalreporter.write_line(f"memlens: {len(nodeids)} {were} not tracked: {problem}")
        if self.json_error is not None:
            terminalreporter.write_line(f"\nmemlens: error: {self.json_error}", red=True)
        elif self.json_path is not None:
            terminalreporter.write_line(f"\nmemlens JSON report: {self.json_path}")

    def _write_report(self, terminalreporter: Any) -> None:
        """The tests with the highest peak, each with its biggest lines. Tests that failed for
        another reason than memory are left out: their numbers stop where the error struck."""
        write = terminalreporter.write_line
        terminalreporter.write_sep("=", "memlens report")
        shown = [r for r in self.results if r.outcome != "failed" or r.memory_problem]
        if not shown:
            write("no test was tracked")
            return
        ranked = sorted(shown, key=lambda r: r.peak_bytes, reverse=True)
        if self.top:
            ranked = ranked[: self.top]
        write(
            f"{len(ranked)} of {len(shown)} tracked tests with the highest peak (call phase only):"
        )
        lines_shown = (
            TOP_LINES if self.listing.stacks is None else min(self.listing.stacks, TOP_LINES)
        )
        for result in ranked:
            write("")
            write(result.nodeid + ("  MEMORY PROBLEMS" if result.memory_problem else ""))
            write(
                f"    peak {format_bytes(result.peak_bytes)}, allocated "
                f"{format_bytes(result.alloc_bytes)} in {result.alloc_count} allocations, "
                f"leaked {format_bytes(result.leak_bytes)}"
            )
            for line in result.top_lines[:lines_shown]:
                where = f"{display_path(line['file'], self.root)}:{line['line']}"
                write(f"    {format_bytes(line['peak_bytes']):>10}  {where} in {line['function']}")

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if self.is_worker:
            return
        if self.history is not None:
            self.history.save()
        if self.json_path is None:
            return
        document = json_report(self.results, python_allocators=self.python_allocators)
        try:
            write_atomically(self.json_path, (json.dumps(document, indent=1) + "\n").encode())
        except OSError as error:
            self.json_error = f"cannot write {self.json_path}: {reason(error)}"
            if session.exitstatus == pytest.ExitCode.OK:
                session.exitstatus = pytest.ExitCode.INTERNAL_ERROR  # CI must not miss it


def top_lines(profile: Profile, limit: int = TOP_LINES) -> list[dict[str, Any]]:
    """The lines holding the most bytes at the peak in the self view (each allocation charged to
    its innermost Python line), over a test profile (see pytest_limits.own_profile)."""
    import numpy as np  # with the model: only once a test has memory to report

    from memlens.model import SELF

    peak = profile.line_totals(SELF, ("peak_bytes",))[:, 0]
    _, frames = profile.line_keys
    ranked = [k for k in np.argsort(-peak, kind="stable")[:limit].tolist() if peak[k] > 0]
    return [
        {
            "file": frames[k].file,
            "line": frames[k].line,
            "function": frames[k].function,
            "peak_bytes": int(peak[k]),
        }
        for k in ranked
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
