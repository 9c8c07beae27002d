"""pytest-memray's markers, flags and verdicts under memlens, end to end: pytest runs
in a fresh process under the real tracker."""

from __future__ import annotations

import json
import shutil
import subprocess
import textwrap
from pathlib import Path

import pytest

from memlens import capture

MiB = 2**20
KiB = 2**10

# A test's peak is its own high-watermark only when the tracker records just the test's frames
# (the native `focus`); until then the plugin takes the test's part of the run's peak.

# A plugin like flaky or anyio: a hook wrapper around the test function that allocates (and
# keeps some) before and after the call.
WRAPPING_PLUGIN = """
import pytest

KEPT = []

class Wrapper:
    @pytest.hookimpl(wrapper=True)
    def pytest_pyfunc_call(self, pyfuncitem):
        scratch = [bytearray(100) for _ in range(10)]
        KEPT.append(bytearray(168))
        result = yield
        scratch.append(bytearray(1000))
        return result

def pytest_configure(config):
    config.pluginmanager.register(Wrapper(), "wrapper")
"""


EMPTY_TESTS = """
import pytest

@pytest.mark.limit_memory("100 B")
def test_memory():
    pass

@pytest.mark.limit_leaks("100 B")
def test_leaks():
    pass

class TestInAClass:
    def test_method(self):
        pass
"""


def run(pytester: pytest.Pytester, *args: str, cache: bool = False) -> pytest.RunResult:
    # A fresh interpreter: the tracker is one per process, and the outer run may be tracked.
    return pytester.runpytest_subprocess(*(() if cache else ("-p", "no:cacheprovider")), *args)


def json_numbers(path: Path) -> dict[str, tuple[int, int, int, int]]:
    tests = json.loads(path.read_text())["tests"]
    return {
        t["nodeid"]: (t["peak_bytes"], t["alloc_bytes"], t["alloc_count"], t["leak_bytes"])
        for t in tests
    }


def test_other_plugins_hook_wrappers_are_not_charged_to_empty_tests(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeconftest(WRAPPING_PLUGIN)
    pytester.makepyfile(test_empty=EMPTY_TESTS)
    result = run(pytester, "--memlens-json", "m.json")
    result.assert_outcomes(passed=3)
    assert json_numbers(pytester.path / "m.json") == {
        "test_empty.py::test_memory": (0, 0, 0, 0),
        "test_empty.py::test_leaks": (0, 0, 0, 0),
        "test_empty.py::TestInAClass::test_method": (0, 0, 0, 0),
    }
    assert "conftest.py" not in result.stdout.str()


def test_nothing_is_imported_while_a_test_is_tracked(pytester: pytest.Pytester) -> None:
    # Every module imported while the tracker runs, recorded by a finder that imports nothing.
    pytester.makeconftest(
        """
        import sys
        from memlens import _native

        IMPORTED = []

        class Recorder:
            @staticmethod
            def find_spec(name, path=None, target=None):
                if _native.is_tracking():
                    IMPORTED.append(name)
                return None

        sys.meta_path.insert(0, Recorder)

        def pytest_sessionfinish(session):
            loaded = "numpy" in sys.modules
            with open("imports.txt", "w") as out:
                out.write(f"numpy loaded: {loaded}; imported while tracking: {IMPORTED}")
        """
    )
    pytester.makepyfile(test_empty=EMPTY_TESTS)
    result = run(pytester, "--memlens", "--memlens-json", "m.json")
    result.assert_outcomes(passed=3)
    # numpy is loaded (the plugin reads captures with it), but never while a test is tracked
    text = (pytester.path / "imports.txt").read_text()
    assert text == "numpy loaded: True; imported while tracking: []"
    assert set(json_numbers(pytester.path / "m.json").values()) == {(0, 0, 0, 0)}


@pytest.mark.skipif(shutil.which("gcc") is None, reason="needs a C compiler")
def test_a_peak_freed_inside_the_test_is_its_peak(pytester: pytest.Pytester) -> None:
    # valloc through a library's own PLT, as a C extension calls it (ctypes' CDLL(None).valloc
    # is libc's address from dlsym, which no GOT hook sees)
    source = pytester.path / "churn.c"
    source.write_text("#include <stdlib.h>\nvoid churn(size_t n) { free(valloc(n)); }\n")
    library = pytester.path / "libchurn.so"
    subprocess.run(["gcc", "-shared", "-fPIC", "-o", str(library), str(source)], check=True)
    pytester.makepyfile(
        test_peaks=f"""
        import ctypes
        import pytest

        churn = ctypes.CDLL({str(library)!r}).churn
        churn.argtypes = [ctypes.c_size_t]

        @pytest.mark.limit_memory("10 B")
        def test_valloc_then_free():
            churn(200)

        def test_raises_after_freeing():
            x = bytearray(2000)
            del x
            raise ValueError("after the peak")
        """
    )
    result = run(pytester, "--memlens-json", "m.json")
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(["test_peaks.py MF*", "Test was limited to 10 B but allocated *"])
    numbers = json_numbers(pytester.path / "m.json")
    assert numbers["test_peaks.py::test_valloc_then_free"][0] >= 200
    # the bytearray's object (56 B) and buffer (2,001 B); the exception comes after its free
    assert numbers["test_peaks.py::test_raises_after_freeing"][0] == 2057


THREADED = """
import threading
import pytest

KEEP = []

def in_a_thread(size):
    thread = threading.Thread(target=lambda: KEEP.append(bytearray(size)))
    thread.start()
    thread.join()

@pytest.mark.limit_memory("1 MB", current_thread_only=True)
def test_memory_this_thread():
    in_a_thread(4 * 2**20)

@pytest.mark.limit_memory("1 MB")
def test_memory_all_threads():
    in_a_thread(4 * 2**20)

@pytest.mark.limit_leaks("1 MB", current_thread_only=True)
def test_leaks_this_thread():
    in_a_thread(4 * 2**20)

@pytest.mark.limit_leaks("1 MB")
def test_leaks_all_threads():
    in_a_thread(4 * 2**20)

@pytest.mark.limit_memory("1 MB", current_thread_only=True)
def test_own_thread_still_counts():
    KEEP.append(bytearray(4 * 2**20))
"""


def test_current_thread_only_leaves_other_threads_out(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_threads=THREADED)
    result = run(pytester, "--memlens-json", "m.json")
    result.assert_outcomes(passed=2, failed=3)
    result.stdout.fnmatch_lines(["test_threads.py .M.MM *"])
    peaks = {
        nodeid: numbers[0] for nodeid, numbers in json_numbers(pytester.path / "m.json").items()
    }
    # the test's own thread made the Thread object and its bookkeeping, not the 4 MiB
    assert peaks["test_threads.py::test_memory_this_thread"] < 16 * KiB
    assert peaks["test_threads.py::test_leaks_this_thread"] < 16 * KiB
    assert (
        4 * MiB < peaks["test_threads.py::test_memory_all_threads"] < 4 * MiB + 64 * KiB
    )  # and the thread's own start-up


DEEP_LEAKS = """
import pytest

KEEP = []

def deep(n, size):
    return deep(n - 1, size) if n else bytearray(size)

@pytest.mark.limit_leaks("1 KB")
def test_twelve_leaks():
""" + "".join(f"    KEEP.append(deep(12, {10_000 + i}))\n" for i in range(12))


@pytest.mark.parametrize(
    ("options", "stacks_shown", "more_stacks", "frames_shown", "more_frames"),
    [
        (["-q"], 1, "...and 11 more stacks", 1, "...and 13 more frames"),
        ([], 3, "...and 9 more stacks", 5, "...and 9 more frames"),
        (["-v"], 10, "...and 2 more stacks", 10, "...and 4 more frames"),
        (["-vv"], 12, None, 14, None),
        (["--stacks", "2"], 3, "...and 9 more stacks", 2, "...and 12 more frames"),
        (["-vv", "--stacks", "3"], 12, None, 3, "...and 11 more frames"),
    ],
)
def test_verbosity_and_stacks_set_how_much_is_listed(
    pytester: pytest.Pytester,
    options: list[str],
    stacks_shown: int,
    more_stacks: str | None,
    frames_shown: int,
    more_frames: str | None,
) -> None:
    pytester.makepyfile(test_deep=DEEP_LEAKS)
    result = run(pytester, *options)
    result.assert_outcomes(failed=1)
    lines = result.stdout.lines
    start = next(i for i, line in enumerate(lines) if line.startswith("Test was limited to 1 KB"))
    failure = lines[start : next(i for i in range(start, len(lines)) if lines[i].startswith("==="))]
    headers = [i for i, line in enumerate(failure) if " leaked (2 allocations) at:" in line]
    assert len(headers) == stacks_shown
    assert failure[0].endswith(
        "but leaked 117.9 KiB in 12 stacks over the limit (caller -> callee):"
    )
    assert (
        (failure[-1] == f"  {more_stacks}") if more_stacks else ("more stacks" not in failure[-1])
    )
    first_stack = failure[headers[0] + 1 : (headers + [len(failure)])[1]]
    first_stack = [line for line in first_stack if not line.startswith("  ...and")]
    frames = [line for line in first_stack if " in deep" in line or " in test_twelve" in line]
    assert len(frames) == frames_shown
    if more_frames:
        assert first_stack[0] == f"      {more_frames}"
    else:
        assert first_stack[0].endswith("in test_twelve_leaks")


def test_fail_on_increase_compares_with_the_previous_run(pytester: pytest.Pytester) -> None:
    def run_with(size: int) -> pytest.RunResult:
        pytester.makepyfile(
            test_growth=f"""
            KEEP = []

            def test_grows():
                KEEP.append(bytearray({size}))

            def test_steady():
                KEEP.append(bytearray(1000))
            """
        )
        return run(pytester, "--memlens", "--fail-on-increase", cache=True)

    run_with(MiB).assert_outcomes(passed=2)  # the first run sets the peaks
    run_with(MiB).assert_outcomes(passed=2)  # the same peak is not an increase
    grown = run_with(MiB + 4096)
    grown.assert_outcomes(passed=1, failed=1)
    grown.stdout.fnmatch_lines(
        [
            "test_growth.py M. *",
            "Test's peak grew from 1.0 MiB (* B) to 1.0 MiB (* B) since the previous run"
            " (+4096 B; --fail-on-increase)",
            "MEMORY PROBLEMS test_growth.py::test_grows - *",
        ],
        consecutive=False,
    )
    # a failed run does not move the baseline; a smaller peak passes and becomes it
    run_with(MiB + 4096).assert_outcomes(passed=1, failed=1)
    run_with(MiB - 4096).assert_outcomes(passed=2)
    run_with(MiB).assert_outcomes(passed=1, failed=1)


def test_each_tests_capture_is_kept_under_the_bin_path(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_caps="""
        import pytest

        @pytest.mark.limit_memory("1 MB")
        def test_over():
            data = bytearray(3 * 2**20)

        @pytest.mark.parametrize("where", ["a/b c"])
        def test_param(where):
            pass
        """
    )
    result = run(pytester, "--memlens-bin-path", "caps/run", "--memlens-bin-prefix", "ci-")
    result.assert_outcomes(passed=1, failed=1)
    files = sorted(p.name for p in (pytester.path / "caps" / "run").iterdir())
    assert files == [
        "ci-test_caps.py_test_over.msgpack",
        "ci-test_caps.py_test_param_a_b_c_.msgpack",
    ]
    profile = capture.load(pytester.path / "caps" / "run" / files[0])
    lines = profile.lines.top("peak_bytes", limit=None)
    ours = [line for line in lines if line.file.endswith("test_caps.py") and line.line == 5]
    assert ours and ours[0].inclusive.peak_bytes >= 3 * MiB
    assert "report" in result.stdout.str()  # implies --memlens

    (pytester.path / "file").write_text("")
    result = run(pytester, "--memlens-bin-path", "file/x")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert any(
        line.startswith("ERROR: --memlens-bin-path: cannot create") for line in result.stderr.lines
    )


def test_memory_problems_are_their_own_outcome_and_failures_stay_out_of_the_report(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        test_mixed="""
        import pytest

        @pytest.mark.limit_memory("1 MB")
        def test_over():
            data = bytearray(2 * 2**20)

        def test_broken():
            data = bytearray(5 * 2**20)
            assert False

        def test_small():
            data = bytearray(2**20)
        """
    )
    result = run(pytester, "--memlens", "-v", "-rA")
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines(
        [
            "test_mixed.py::test_over MEMORY PROBLEMS *",
            "test_mixed.py::test_broken FAILED *",
            "test_mixed.py::test_small PASSED *",
            "*= memlens report =*",
            "2 of 2 tracked tests with the highest peak (call phase only):",
            "test_mixed.py::test_over  MEMORY PROBLEMS",
            "test_mixed.py::test_small",
            "*short test summary info*",
            "PASSED test_mixed.py::test_small",
            "MEMORY PROBLEMS test_mixed.py::test_over - Failed: *",
            "FAILED test_mixed.py::test_broken - assert False",
        ],
        consecutive=False,
    )
    report = result.stdout.str().split("memlens report")[1]
    assert "test_broken" not in report.split("short test summary")[0]


def test_ini_turns_tracking_on_and_the_summary_can_be_hidden(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nmemlens = true\n")
    pytester.makepyfile(
        test_sizes="""
        def test_one():
            data = bytearray(1 * 2**20)

        def test_two():
            data = bytearray(2 * 2**20)
        """
    )
    result = run(pytester, "--most-allocations", "0")  # 0: every test
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        [
            "*= memlens report =*",
            "2 of 2 tracked tests with the highest peak (call phase only):",
            "test_sizes.py::test_two",
            "test_sizes.py::test_one",
        ],
        consecutive=False,
    )
    result = run(pytester, "--hide-memlens-summary")
    result.assert_outcomes(passed=2)
    assert "memlens report" not in result.stdout.str()
    pytester.makeini("[pytest]\nmemlens = true\nhide_memlens_summary = true\n")
    assert "memlens report" not in run(pytester).stdout.str()


def test_limits_read_sizes_as_pytest_memray_does(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_units=textwrap.dedent(
            """
            import pytest

            @pytest.mark.limit_memory("1 MB")  # 1,048,576 B: a 1,000,100 B buffer fits
            def test_binary_megabyte():
                data = bytearray(1_000_100)

            @pytest.mark.limit_memory("1 MiB")
            def test_over_a_mebibyte():
                data = bytearray(1_048_600)
            """
        )
    )
    result = run(pytester)
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["Test was limited to 1 MiB (1048576 B) but allocated 1.0 MiB*"])
