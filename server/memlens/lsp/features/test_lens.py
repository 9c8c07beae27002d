"""Profile this test: a code lens on every pytest test function, and memlens.profileTest.

The tests of a file are found in its text with `ast` (module-level `def test_*`, `test_*`
methods of `Test*` classes, nested ones too, async or not), never by importing it. The lens runs
the command `memlens.profileThisTest` of the client, which saves the file and sends
`memlens.profileTest {uri, test, confirmed?}` (test = "test_x" or "TestY::test_x").

memlens.profileTest runs `python -m pytest FILE::TEST` with the memlens plugin's per-test capture
(`--memlens-bin-path`) and numbers (`--memlens-json`) through the profile runner (lsp/runner.py),
streams pytest's output to the client's log, and shows the test's capture as a profile of its
file. A parametrized test runs every case; the case with the highest peak is shown. After a run
the test's lens says `peak 10.0 MiB`, and with a limit marker `peak 3.2 MiB / limit 4 MiB ✓`
(✗ when the limit failed, which is also a diagnostic on the `def` line). Test verdicts are shown
while a profile is shown (memlens.clear takes them away with the annotations).

Result: {nodeid, outcome, passed, peakBytes, peakText, verdict, cases, exitCode, capturePath},
or null after one clear message (pytest missing, collection error, no such test, cancelled).
"""

from __future__ import annotations

import ast
import json
import os
import shutil
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lsprotocol import types

from memlens.capture import CaptureError
from memlens.lsp import handlers, protocol, runner, views
from memlens.lsp.handlers import Host
from memlens.units import format_bytes, parse_size

LIMIT_MARKERS = ("limit_memory", "limit_leaks")


# --- finding the tests ---------------------------------------------------------------------


@dataclass(frozen=True)
class TestFunction:
    """A test function as pytest would collect it, from the file's text."""

    __test__ = False  # not a test class, whatever pytest thinks of the name

    test: str  # "test_x" or "TestY::test_x": the node id after "FILE::"
    line: int  # 0-based line of its `def`
    limit: tuple[str, int] | None  # (marker name, bytes) of a limit marker on it, if readable


def _limit_marker(decorators: list[ast.expr]) -> tuple[str, int] | None:
    """`@pytest.mark.limit_memory("4 MB")` (or limit_leaks) with a literal size; the closest
    mark first, as pytest's get_closest_marker."""
    for decorator in decorators:
        if not isinstance(decorator, ast.Call) or not isinstance(decorator.func, ast.Attribute):
            continue
        name = decorator.func.attr
        if name not in LIMIT_MARKERS or not decorator.args:
            continue
        size = decorator.args[0]
        if isinstance(size, ast.Constant):
            try:
                return name, parse_size(size.value)
            except ValueError:
                return None  # the plugin reports a bad size as a collection error
    return None


def _pytestmark(body: list[ast.stmt]) -> list[ast.expr]:
    """The marks of a `pytestmark = mark` or `= [marks]` in a module or class body."""
    for node in body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "pytestmark" for t in node.targets
        ):
            value = node.value
            return list(value.elts) if isinstance(value, ast.List | ast.Tuple) else [value]
    return []


def _collect(body: list[ast.stmt], prefix: str, inherited: list[ast.expr]) -> list[TestFunction]:
    found: list[TestFunction] = []
    inherited = _pytestmark(body) + inherited  # the closest first
    for node in body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith(
            "test"
        ):
            limit = _limit_marker(node.decorator_list + inherited)
            found.append(TestFunction(prefix + node.name, node.lineno - 1, limit))
        elif isinstance(node, ast.ClassDef) and node.name.startswith("Test"):
            marks = node.decorator_list + inherited
            found += _collect(node.body, f"{prefix}{node.name}::", marks)
    return found


def find_tests(source: str) -> list[TestFunction]:
    """The tests in a file's text; none when it does not parse (pytest would not collect it)."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return []
    return _collect(tree.body, "", [])


def is_test_file(path: str) -> bool:
    """pytest's default python_files: test_*.py and *_test.py."""
    name = os.path.basename(path)
    return name.endswith(".py") and (name.startswith("test_") or name.endswith("_test.py"))


# --- results, kept per server -----------------------------------------------------------------


@dataclass
class TestResult:
    """A test's last run, from the plugin's JSON (its highest-peak case)."""

    __test__ = False

    peak_bytes: int
    leak_bytes: int
    limit_memory: int | None
    limit_leaks: int | None
    memory_problem: bool
    outcome: str

    def verdict(self) -> str:
        """`peak 3.2 MiB / limit 4 MiB ✓`; leaks against a limit_leaks; the peak alone."""
        mark = "✗" if self.memory_problem else "✓"
        if self.limit_memory is not None:
            return (
                f"peak {format_bytes(self.peak_bytes)} / limit"
                f" {format_bytes(self.limit_memory)} {mark}"
            )
        if self.limit_leaks is not None:
            return (
                f"peak {format_bytes(self.peak_bytes)} · leaked {format_bytes(self.leak_bytes)}"
                f" / leak limit {format_bytes(self.limit_leaks)} {mark}"
            )
        return f"peak {format_bytes(self.peak_bytes)}"


_results: dict[int, dict[tuple[str, str], TestResult]] = {}  # id(server) -> (file, test) -> last


def results_of(server: Host) -> dict[tuple[str, str], TestResult]:
    """The tests' last results, while a profile is shown (none after memlens.clear)."""
    if server.session.profile is None:
        return {}
    return _results.setdefault(id(server), {})


def _tests_in(server: Host, uri: str) -> list[TestFunction]:
    document = server.workspace.get_text_document(uri)
    try:
        return find_tests(document.source)
    except OSError:  # not open and not readable from disk
        return []


def _at(line: int) -> types.Range:
    position = types.Position(line=line, character=0)
    return types.Range(start=position, end=position)


def lenses(server: Host, uri: str) -> list[types.CodeLens]:
    file = handlers.path_of(uri)
    if file is None or not is_test_file(file):
        return []
    results = results_of(server)
    found: list[types.CodeLens] = []
    for test in _tests_in(server, uri):
        title = "Profile this test"
        if test.limit is not None:
            title += f" · {test.limit[0]} {format_bytes(test.limit[1])}"
        argument = {"uri": uri, "test": test.test}
        command = types.Command(
            title=title, command=protocol.PROFILE_THIS_TEST, arguments=[argument]
        )
        found.append(types.CodeLens(range=_at(test.line), command=command))
        result = results.get((file, test.test))
        if result is not None:
            failed = result.outcome == "failed" and not result.memory_problem
            shown = types.Command(
                title=result.verdict() + (" · test failed" if failed else ""),
                command=protocol.SHOW_PEAK_STACK,
                arguments=[uri],
            )
            found.append(types.CodeLens(range=_at(test.line), command=shown))
    return found


def limit_diagnostics(server: Host) -> dict[str, list[types.Diagnostic]]:
    """A failed limit as an error on its test's `def` line (merged into every publish)."""
    by_file: dict[str, list[types.Diagnostic]] = {}
    failed = {key: r for key, r in results_of(server).items() if r.memory_problem}
    for file in {file for file, _ in failed}:
        for test in _tests_in(server, handlers.uri_of(file)):
            result = failed.get((file, test.test))
            if result is None:
                continue
            by_file.setdefault(file, []).append(
                types.Diagnostic(
                    range=types.Range(
                        start=types.Position(line=test.line, character=0),
                        end=types.Position(line=test.line + 1, character=0),
                    ),
                    message=f"{test.test}: {result.verdict()} (memory limit failed)",
                    severity=types.DiagnosticSeverity.Error,
                    source="memlens",
                    code="limit",
                )
            )
    return by_file


# --- running one test -------------------------------------------------------------------------


@dataclass
class PytestRun(runner.Run):
    """`python -m pytest FILE::TEST` with the plugin's outputs, run as a profile run is."""

    def command(self) -> list[str]:
        return [self.interpreter, "-m", "pytest", self.script, *self.args]


def pytest_arguments(work: Path, python_allocators: bool) -> list[str]:
    # One argument each (`--opt=value`): pytest takes a bare existing path as a place to look
    # for tests and for its rootdir.
    flags = [f"--memlens-bin-path={work}", f"--memlens-json={work / 'tests.json'}"]
    return flags + ([] if python_allocators else ["--memlens-no-python-allocators"])


def run_problem(run: PytestRun, test: str, exit_code: int, output: list[str]) -> str:
    """Why pytest gave no numbers for the test, in one line."""
    text, name = "\n".join(output), Path(run.script.partition("::")[0]).name
    if "No module named pytest" in text:
        return (
            f"pytest is not installed in {run.interpreter} (memlens.python);"
            f" install it there: {run.interpreter} -m pip install pytest"
        )
    if "error during collection" in text or "ERROR collecting" in text:
        error = next((line[1:].strip() for line in output if line.startswith("E  ")), "")
        return f"cannot collect {name}: {error or 'see the Memlens output'}"
    if exit_code == 5 or "ERROR: not found" in text or "found no collectors" in text:
        return f"no test {test} in {name}"
    if "unrecognized arguments: --memlens" in text:
        return "the memlens pytest plugin is not loaded (PYTEST_DISABLE_PLUGIN_AUTOLOAD?)"
    last = next((line for line in reversed(output) if line.strip()), "")
    return f"{test} gave no memory numbers (skipped, or failed in setup): {last}"


def read_results(work: Path) -> list[dict[str, Any]]:
    try:
        document = json.loads((work / "tests.json").read_text())
        return list(document["tests"])
    except (OSError, ValueError, KeyError, TypeError):
        return []


async def profile_test(server: Host, raw: Any) -> protocol.ProfileTestResult | None:
    params = protocol.parse(protocol.ProfileTestParams, raw)
    file = handlers.file_to_run(server, params.uri, params.confirmed, params.test)
    if file is None:
        return None
    await handlers.stop_running(server)
    work = server.private_dir / f"test-{uuid.uuid4().hex[:8]}"
    work.mkdir()
    try:
        return await _run_and_show(server, params.test, file, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


async def _run_and_show(
    server: Host, test: str, file: str, work: Path
) -> protocol.ProfileTestResult | None:
    settings, roots = server.session.settings, server.session.roots
    run = PytestRun(
        interpreter=settings.python,
        script=f"{file}::{test}",
        args=pytest_arguments(work, settings.python_allocators),
        capture=work / "unused.msgpack",  # the plugin writes one capture per test into work/
        cwd=settings.cwd or (roots[0] if roots else os.path.dirname(file)),
        env={**os.environ, **settings.env},
    )
    job = views.ProfileJob(run, f"memlens-test-{uuid.uuid4().hex}")
    server.running = job
    started = time.monotonic()
    await views.begin_progress(server, job.token, f"memlens: profiling {test}")
    job.end_message = "failed"
    try:
        outcome = await _execute(server, job, test)
        if outcome is None:
            return None
        exit_code, output = outcome
        cases = read_results(work)
        if not cases:
            server.show(run_problem(run, test, exit_code, output))
            return None
        shown = await _show(server, test, file, work, cases, exit_code, time.monotonic() - started)
        job.end_message = shown.verdict if shown else "failed"
        return shown
    finally:
        server.work_done_progress.end(job.token, types.WorkDoneProgressEnd(message=job.end_message))


async def _execute(server: Host, job: views.ProfileJob, test: str) -> tuple[int, list[str]] | None:
    """Run pytest to the end: its exit code and output, or None when cancelled."""
    output: list[str] = []

    def on_output(line: str, is_error: bool) -> None:
        output.append(line)
        kind = types.MessageType.Warning if is_error else types.MessageType.Log
        server.log(f"[{test}] {line}", kind)

    async def no_checkpoints(_: Path) -> None:
        pass  # the plugin writes a test's capture when the test ends

    def cancelled() -> bool:
        return job.cancel_requested or views.progress_cancelled(server, job.token)

    server.log(f"memlens: running {' '.join(job.run.command())}", types.MessageType.Info)
    try:
        exit_code = await runner.execute(job.run, on_output, no_checkpoints, cancelled)
    except runner.LaunchError as error:
        server.show(f"cannot profile {test}: {error}")
        return None
    finally:
        if server.running is job:
            server.running = None
        job.done.set()
    if exit_code is None or cancelled():
        job.end_message = "cancelled"  # by the user, or by a newer run
        return None
    return exit_code, output


def _capture_of(work: Path, nodeid: str) -> Path:
    """A case's capture: the only one, or the one the plugin named after the test's id."""
    captures = list(work.glob("*.msgpack"))
    if len(captures) == 1:
        return captures[0]
    # Imports pytest, which the server's interpreter may lack (only memlens.python needs it).
    from memlens.pytest_plugin import capture_file_name

    return work / capture_file_name("", nodeid)


async def _show(
    server: Host,
    test: str,
    file: str,
    work: Path,
    cases: list[dict[str, Any]],
    exit_code: int,
    duration: float,
) -> protocol.ProfileTestResult | None:
    """Keep the highest-peak case's result, show its capture, and say how the test went."""
    case = max(cases, key=lambda c: c["peak_bytes"])
    result = TestResult(
        peak_bytes=case["peak_bytes"],
        leak_bytes=case["leak_bytes"],
        limit_memory=case["limit_memory"],
        limit_leaks=case["limit_leaks"],
        memory_problem=case["memory_problem"],
        outcome=case["outcome"],
    )
    found = _capture_of(work, case["nodeid"])
    kept = server.private_dir / f"{Path(file).stem}-{uuid.uuid4().hex[:8]}.msgpack"
    try:
        found.replace(kept)
    except OSError as error:
        server.show(f"{test} ran, but its capture is missing: {error.strerror}")
        return None
    # Stored before the profile is shown, so that its lens refresh and diagnostics include it.
    _results.setdefault(id(server), {})[(file, test)] = result
    try:
        await views.load_into(server, kept, file, final=True)
    except (CaptureError, OSError) as error:
        kept.unlink(missing_ok=True)
        server.show(f"cannot read the capture of {test}: {error}")
        return None
    server.session.replace_capture(kept)
    passed = all(c["passed"] for c in cases)
    summary = f"{case['nodeid']} {result.outcome}: {result.verdict()} ({duration:.1f} s)"
    server.log(f"memlens: {summary}", types.MessageType.Info)
    if not passed:
        server.show(f"{summary}; pytest's output is in the Memlens log", types.MessageType.Warning)
    return protocol.ProfileTestResult(
        nodeid=case["nodeid"],
        outcome=result.outcome,
        passed=passed,
        peak_bytes=result.peak_bytes,
        peak_text=format_bytes(result.peak_bytes),
        verdict=result.verdict(),
        cases=len(cases),
        exit_code=exit_code,
        capture_path=str(kept),
    )


def register(server: Host) -> None:
    handlers.register(server, (protocol.PROFILE_TEST, profile_test))
    server.lens_sources.append(lenses)
    server.diagnostic_sources.append(limit_diagnostics)
