"""Profile this test: the lens on pytest tests and memlens.profileTest, over the real server,
running the real pytest plugin on real test files."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import pytest
from lsprotocol import types
from pytest_lsp import LanguageClient
from test_server import command, messages_after

from memlens.lsp.features.test_lens import find_tests
from memlens.lsp.handlers import plain

on_a_loop = pytest.mark.asyncio(loop_scope="function")

TESTS = """\
import pytest


def test_big():
    held = bytearray(10 * 2**20)  # line 5: the test's peak
    assert len(held) == 10 * 2**20


class TestGroup:
    def test_method(self):
        assert True

    async def test_async(self):
        pass

    class TestInner:
        def test_nested(self):
            pass


@pytest.mark.parametrize("size", [1, 3])
def test_param(size):
    held = bytearray(size * 2**20)
    assert held


@pytest.mark.limit_memory("4 MB")
def test_over_limit():
    held = bytearray(8 * 2**20)
    assert held


@pytest.mark.limit_memory("16 MB")
def test_under_limit():
    held = bytearray(2 * 2**20)
    assert held


def helper_not_a_test():
    pass


def test_fails():
    held = bytearray(2**20)
    raise RuntimeError(len(held))  # an assert would repr the 1 MiB in the test, at its peak
"""


@pytest.fixture
def tests_file(workspace: Path) -> Path:
    path = workspace / "test_sample.py"
    path.write_text(TESTS)
    return path


async def lenses(client: LanguageClient, path: Path) -> list[tuple[int, str, Any]]:
    found = await client.text_document_code_lens_async(
        types.CodeLensParams(text_document=types.TextDocumentIdentifier(uri=path.as_uri()))
    )
    return [
        (lens.range.start.line, lens.command.title, plain(lens.command.arguments))
        for lens in found or []
        if lens.command is not None
    ]


async def profile_test(client: LanguageClient, path: Path, test: str) -> Any:
    return await command(client, "memlens.profileTest", {"uri": path.as_uri(), "test": test})


async def refusal(client: LanguageClient, path: Path, test: str) -> str:
    """The one message of a run that gave no result."""
    shown, result = await messages_after(client, profile_test(client, path, test))
    assert result is None
    (message,) = shown
    return str(message)


def test_find_tests_reads_the_text_without_importing_it() -> None:
    found = find_tests(TESTS)
    assert [(t.test, t.line, t.limit) for t in found] == [
        ("test_big", 3, None),
        ("TestGroup::test_method", 9, None),
        ("TestGroup::test_async", 12, None),
        ("TestGroup::TestInner::test_nested", 16, None),
        ("test_param", 21, None),
        ("test_over_limit", 27, ("limit_memory", 4 * 2**20)),
        ("test_under_limit", 33, ("limit_memory", 16 * 2**20)),
        ("test_fails", 42, None),
    ]
    assert find_tests("def test_x(:\n") == []  # pytest cannot collect it either
    marked = find_tests(
        "import pytest\n"
        "pytestmark = [pytest.mark.limit_leaks('1 MB')]\n"
        "class TestA:\n"
        "    pytestmark = pytest.mark.limit_memory('2 MB')\n"
        "    def test_b(self):\n"
        "        pass\n"
        "def test_c():\n"
        "    pass\n"
    )
    assert [(t.test, t.limit) for t in marked] == [
        ("TestA::test_b", ("limit_memory", 2 * 2**20)),
        ("test_c", ("limit_leaks", 2**20)),
    ]


@on_a_loop
async def test_lens_on_every_test_of_a_never_profiled_file(
    client: LanguageClient, tests_file: Path
) -> None:
    uri = tests_file.as_uri()
    assert await lenses(client, tests_file) == [
        (3, "Profile this test", [{"uri": uri, "test": "test_big"}]),
        (9, "Profile this test", [{"uri": uri, "test": "TestGroup::test_method"}]),
        (12, "Profile this test", [{"uri": uri, "test": "TestGroup::test_async"}]),
        (16, "Profile this test", [{"uri": uri, "test": "TestGroup::TestInner::test_nested"}]),
        (21, "Profile this test", [{"uri": uri, "test": "test_param"}]),
        (
            27,
            "Profile this test · limit_memory 4.0 MiB",
            [{"uri": uri, "test": "test_over_limit"}],
        ),
        (
            33,
            "Profile this test · limit_memory 16.0 MiB",
            [{"uri": uri, "test": "test_under_limit"}],
        ),
        (42, "Profile this test", [{"uri": uri, "test": "test_fails"}]),
    ]
    # Only pytest's test files get the lens.
    other = tests_file.with_name("sample.py")
    other.write_text(TESTS)
    assert await lenses(client, other) == []


@on_a_loop
async def test_profiling_a_test_shows_its_peak_line(
    client: LanguageClient, tests_file: Path
) -> None:
    result = await profile_test(client, tests_file, "test_big")
    assert result["nodeid"] == "test_sample.py::test_big"
    assert (result["outcome"], result["passed"], result["exitCode"]) == ("passed", True, 0)
    assert result["peakText"] == "10.0 MiB"
    assert result["verdict"] == "peak 10.0 MiB"
    (progress,) = [
        r for t, r in client.progress_reports.items() if str(t).startswith("memlens-test")
    ]
    assert isinstance(progress[0], types.WorkDoneProgressBegin) and progress[0].cancellable
    assert progress[0].title == "memlens: profiling test_big"
    assert isinstance(progress[-1], types.WorkDoneProgressEnd)
    assert progress[-1].message == "peak 10.0 MiB"
    peak = client.diagnostics[tests_file.as_uri()][0]
    assert (peak.range.start.line, peak.code) == (4, "peak")
    # two allocations: the bytearray object and its buffer
    assert (
        peak.message
        == "charged to this line: 10.0 MiB at peak (2 allocations) · 10.0 MiB allocated"
    )
    shown = await lenses(client, tests_file)
    assert (3, "peak 10.0 MiB", [tests_file.as_uri()]) in shown
    # pytest's own output reaches the client's log.
    logged = [m.message for m in client.log_messages]
    assert any("1 passed" in line for line in logged)


@on_a_loop
async def test_a_parametrized_test_shows_its_highest_case(
    client: LanguageClient, tests_file: Path
) -> None:
    result = await profile_test(client, tests_file, "test_param")
    assert (result["nodeid"], result["cases"]) == ("test_sample.py::test_param[3]", 2)
    assert result["peakText"] == "3.0 MiB"


@on_a_loop
async def test_a_failing_test_says_so(client: LanguageClient, tests_file: Path) -> None:
    shown, result = await messages_after(client, profile_test(client, tests_file, "test_fails"))
    assert (result["outcome"], result["passed"], result["exitCode"]) == ("failed", False, 1)
    (message,) = shown
    assert message.startswith("memlens: test_sample.py::test_fails failed: peak 1.0 MiB (")
    assert (42, "peak 1.0 MiB · test failed", [tests_file.as_uri()]) in await lenses(
        client, tests_file
    )


@on_a_loop
async def test_limit_lens_and_diagnostic(client: LanguageClient, tests_file: Path) -> None:
    shown, result = await messages_after(
        client, profile_test(client, tests_file, "test_over_limit")
    )
    assert (result["outcome"], result["passed"]) == ("failed", False)
    assert result["verdict"] == "peak 8.0 MiB / limit 4.0 MiB ✗"
    (message,) = shown
    assert re.fullmatch(
        r"memlens: test_sample\.py::test_over_limit failed: peak 8\.0 MiB / limit 4\.0 MiB ✗"
        r" \(\d+\.\d s\); pytest's output is in the Memlens log",
        message,
    )
    limit = [d for d in client.diagnostics[tests_file.as_uri()] if d.code == "limit"]
    assert [(d.range.start.line, d.severity, d.message) for d in limit] == [
        (
            27,
            types.DiagnosticSeverity.Error,
            "test_over_limit: peak 8.0 MiB / limit 4.0 MiB ✗ (memory limit failed)",
        )
    ]
    await profile_test(client, tests_file, "test_under_limit")
    shown_lenses = await lenses(client, tests_file)
    assert (27, "peak 8.0 MiB / limit 4.0 MiB ✗", [tests_file.as_uri()]) in shown_lenses
    assert (33, "peak 2.0 MiB / limit 16.0 MiB ✓", [tests_file.as_uri()]) in shown_lenses

    # Clear takes the verdicts away with the annotations.
    await command(client, "memlens.clear", {})
    assert all(
        title.startswith("Profile this test") for _, title, _ in await lenses(client, tests_file)
    )


@on_a_loop
async def test_collection_error_is_one_message(client: LanguageClient, workspace: Path) -> None:
    broken = workspace / "test_broken.py"
    broken.write_text("import no_such_module_memlens\n\n\ndef test_x():\n    pass\n")
    assert await refusal(client, broken, "test_x") == (
        "memlens: cannot collect test_broken.py:"
        " ModuleNotFoundError: No module named 'no_such_module_memlens'"
    )


@on_a_loop
async def test_no_such_test(client: LanguageClient, tests_file: Path) -> None:
    assert await refusal(client, tests_file, "test_nope") == (
        "memlens: no test test_nope in test_sample.py"
    )


@on_a_loop
@pytest.mark.settings({"python": "/usr/bin/python3"})  # Debian's: no pytest in it
async def test_pytest_missing(client: LanguageClient, tests_file: Path) -> None:
    assert await refusal(client, tests_file, "test_big") == (
        "memlens: pytest is not installed in /usr/bin/python3 (memlens.python);"
        " install it there: /usr/bin/python3 -m pip install pytest"
    )


@on_a_loop
async def test_cancelling_the_progress_stops_the_test(
    client: LanguageClient, workspace: Path
) -> None:
    slow = workspace / "test_slow.py"
    slow.write_text("import time\n\n\ndef test_sleeps():\n    time.sleep(120)\n")
    running = asyncio.create_task(profile_test(client, slow, "test_sleeps"))

    def begun() -> list[Any]:
        return [t for t in client.progress_reports if str(t).startswith("memlens-test")]

    while not begun():  # the progress begins once pytest is starting
        await asyncio.sleep(0.05)
    (token,) = begun()
    client.window_work_done_progress_cancel(types.WorkDoneProgressCancelParams(token=token))
    assert await asyncio.wait_for(running, timeout=60) is None
    end = client.progress_reports[token][-1]
    assert isinstance(end, types.WorkDoneProgressEnd) and end.message == "cancelled"
