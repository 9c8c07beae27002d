"""pytest-xdist and --fail-on-increase, as pytest-memray users run them: `-n 2` gives every
test the verdict and the numbers it has without xdist, and the peaks kept for
--fail-on-increase are the same whichever way the previous run went."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

MiB = 2**20

# Distinct functions, not one parametrized: the first call of a function in a process allocates
# a few bytes of the interpreter's own that stay (48 B on 3.11), and with xdist which case of a
# parametrized test is the first in its worker is not the same as in a serial run.
SUITE = """
import pytest

KEEP = []

def test_one():
    data = bytearray(1 * 2**20)

def test_two():
    data = bytearray(2 * 2**20)

def test_three():
    data = bytearray(3 * 2**20)

@pytest.mark.limit_memory("1 MB")
def test_over():
    data = bytearray(3 * 2**20)

@pytest.mark.limit_leaks("1 MB")
def test_leaks_over():
    KEEP.append(bytearray(2 * 2**20))

@pytest.mark.limit_memory("4 MB")
def test_under():
    data = bytearray(2 * 2**20)

def test_fails_plainly():
    data = bytearray(2**20)
    assert False
"""

# The exact numbers of each test: (peak, leaked) bytes. A bytearray of n bytes is n + 57 B (its
# object and its buffer's terminating byte on CPython 3.10-3.13); KEEP's first append gives the
# list an array of 4 pointers (32 B).
EXPECTED = {
    "test_suite.py::test_one": (MiB + 57, 0),
    "test_suite.py::test_two": (2 * MiB + 57, 0),
    "test_suite.py::test_three": (3 * MiB + 57, 0),
    "test_suite.py::test_over": (3 * MiB + 57, 0),
    "test_suite.py::test_leaks_over": (2 * MiB + 57 + 32, 2 * MiB + 57 + 32),
    "test_suite.py::test_under": (2 * MiB + 57, 0),
}
VERDICTS = {
    "test_suite.py::test_over": "failed",
    "test_suite.py::test_leaks_over": "failed",
    "test_suite.py::test_fails_plainly": "failed",
}


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    # A fresh interpreter: the tracker is one per process, and the outer run may be tracked.
    return pytester.runpytest_subprocess("-p", "no:randomly", *args)


def json_tests(report_path: Path) -> dict[str, dict[str, object]]:
    return {t["nodeid"]: t for t in json.loads(report_path.read_text())["tests"]}


def memory_failures(output: str) -> tuple[list[str], list[str]]:
    """The memory verdicts' messages, and the tests of the short summary's MEMORY PROBLEMS
    lines, sorted (xdist reorders them)."""
    lines = output.splitlines()
    messages = sorted(line for line in lines if line.startswith("Test was limited to"))
    tests = sorted(line.split()[2] for line in lines if line.startswith("MEMORY PROBLEMS "))
    return messages, tests


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_each_test_gets_the_same_verdict_and_numbers_with_or_without_xdist(
    pytester: pytest.Pytester, workers: list[str]
) -> None:
    pytester.makepyfile(test_suite=SUITE)
    result = run(
        pytester, *workers, "--memlens", "--most-allocations", "0", "--memlens-json", "m.json"
    )
    result.assert_outcomes(passed=4, failed=3)
    tests = json_tests(pytester.path / "m.json")
    numbers = {
        nodeid: (t["peak_bytes"], t["leak_bytes"])
        for nodeid, t in tests.items()
        if nodeid != "test_suite.py::test_fails_plainly"
    }
    assert numbers == EXPECTED
    outcomes = {nodeid: t["outcome"] for nodeid, t in tests.items()}
    assert outcomes == {nodeid: VERDICTS.get(nodeid, "passed") for nodeid in tests}
    assert memory_failures(result.stdout.str()) == (
        [
            "Test was limited to 1 MB (1048576 B) but allocated 3.0 MiB at its peak",
            "Test was limited to 1 MB (1048576 B) of leaked memory per stack but leaked 2.0 MiB"
            " in 1 stack over the limit (caller -> callee):",
        ],
        ["test_suite.py::test_leaks_over", "test_suite.py::test_over"],
    )
    output = result.stdout.str()
    assert output.count("= memlens report =") == 1
    report = output[output.index("= memlens report =") :]
    listed = re.findall(r"^(test_suite\.py::\S+)", report, flags=re.MULTILINE)
    # every tracked test once (ordinary failures are not in the memory report)
    assert sorted(listed) == sorted(set(EXPECTED))


# A list per test: a list shared by both would grow in whichever test runs first in its process.
GROWING = """
GROWS, STEADY = [], []

def test_grows():
    GROWS.append(bytearray({size}))

def test_steady():
    STEADY.append(bytearray(1000))
"""


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_fail_on_increase_fails_the_test_that_grew_and_passes_the_one_that_did_not(
    pytester: pytest.Pytester, workers: list[str]
) -> None:
    def run_with(size: int, *args: str) -> pytest.RunResult:
        pytester.makepyfile(test_growth=GROWING.format(size=size))
        return run(pytester, *args, "--memlens", "--fail-on-increase", "--memlens-json", "m.json")

    run_with(MiB, *workers).assert_outcomes(passed=2)  # the first run stores the peaks
    grown = run_with(MiB + 4096, *workers)
    grown.assert_outcomes(passed=1, failed=1)
    grown.stdout.fnmatch_lines(
        [
            "*Test's peak grew from 1.0 MiB (1048665 B) to 1.0 MiB (1052761 B) since the previous"
            " run (+4096 B; --fail-on-increase)",
            "MEMORY PROBLEMS test_growth.py::test_grows - *",
        ],
        consecutive=False,
    )
    outcomes = {n: t["outcome"] for n, t in json_tests(pytester.path / "m.json").items()}
    assert outcomes == {
        "test_growth.py::test_grows": "failed",
        "test_growth.py::test_steady": "passed",
    }
    # The stored peaks are the same whether xdist ran the previous run or not: a serial run
    # after it compares with them.
    again = run_with(MiB + 4096)
    again.assert_outcomes(passed=1, failed=1)
    stored = json.loads((pytester.path / ".pytest_cache" / "v" / "memlens" / "peaks").read_text())
    # (the grown peak failed: the stored one stays; the list's array is 32 B)
    assert stored == {
        "test_growth.py::test_grows": MiB + 57 + 32,
        "test_growth.py::test_steady": 1000 + 57 + 32,
    }
