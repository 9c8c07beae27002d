"""The pytest plugin end to end: pytest runs in a fresh process under the real tracker, on small
test files whose allocations are known to the byte."""

from __future__ import annotations

import json
import sys
from typing import Any

import pytest

MiB = 2**20
KiB = 2**10


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    # A fresh interpreter: the tracker is one per process, and the outer run may be tracked.
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", *args)


def test_limit_memory_fails_above_the_limit_with_the_peak_stacks(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_big="""
        import pytest

        def make(size):
            return bytearray(size)

        @pytest.mark.limit_memory("10 MB")
        def test_big():
            data = make(396 * 2**20)
            assert len(data) == 396 * 2**20

        @pytest.mark.limit_memory("10 MB")
        def test_small():
            data = make(5 * 2**20)

        @pytest.mark.limit_memory("400MiB")
        def test_big_under_a_bigger_limit():
            data = make(396 * 2**20)
        """
    )
    result = run(pytester)
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*_ test_big _*",
            "Test was limited to 10 MB (10485760 B) but allocated 396.0 MiB at its peak",
            "Top stacks at peak (caller -> callee):",
            "  396.0 MiB (*% of the peak, * allocation*) at:",
            "      test_big.py:8 in test_big",
            "      test_big.py:4 in make",
            "MEMORY PROBLEMS test_big.py::test_big - Failed: Test was limited to 10 MB (10*",
        ],
        consecutive=False,
    )
    # The failure is the limit, not a traceback through the plugin.
    assert "pytest_plugin.py" not in result.stdout.str()


def test_memory_allocated_before_the_test_does_not_count(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_before="""
        import pytest

        DATA = [bytearray(2**20) for _ in range(50)]  # 50 MiB at import

        @pytest.fixture
        def dataset():
            return bytearray(50 * 2**20)  # setup is not the test's call

        @pytest.mark.limit_memory("1 MB")
        def test_reads_module_data():
            assert sum(len(d) for d in DATA) == 50 * 2**20

        @pytest.mark.limit_memory("1 MB")
        def test_uses_fixture(dataset):
            assert len(dataset) == 50 * 2**20

        @pytest.mark.limit_leaks("1 KB")
        def test_frees_module_data():
            DATA.clear()  # freeing older memory neither leaks nor goes negative
        """
    )
    run(pytester).assert_outcomes(passed=3)


LEAKS_TESTS = """
        import pytest

        CACHE = []

        @pytest.mark.limit_leaks("1 MB")
        def test_leaks():
            CACHE.append(bytearray(4 * 2**20))

        @pytest.mark.limit_leaks("1 MB")
        def test_frees():
            data = bytearray(4 * 2**20)
            del data

        @pytest.mark.limit_leaks("1 MB")
        def test_cycle_collected():
            cycle = [bytearray(4 * 2**20)]
            cycle.append(cycle)

        def fill_cache():
            CACHE.append(bytearray(4 * 2**20))

        SEEN = []

        def not_the_cache(stack):
            SEEN.append([(frame.function, frame.lineno) for frame in stack.frames])
            return not any(frame.function == "fill_cache" for frame in stack.frames)

        @pytest.mark.limit_leaks("1 MB", filter_fn=not_the_cache)
        def test_cache_filtered_out():
            fill_cache()

        @pytest.mark.limit_leaks("1 MB", filter_fn=lambda stack: True)
        def test_cache_kept_by_the_filter():
            fill_cache()

        def test_filter_saw_innermost_frame_first():
            assert [("fill_cache", 20), ("test_cache_filtered_out", 30)] in [s[:2] for s in SEEN]
"""


def test_limit_leaks(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_leaks=LEAKS_TESTS)
    result = run(pytester)
    result.assert_outcomes(passed=4, failed=2)
    result.stdout.fnmatch_lines(
        [
            "*_ test_leaks _*",
            "Test was limited to 1 MB (1048576 B) of leaked memory per stack but leaked 4.0 MiB"
            " in 1 stack over the limit (caller -> callee):",
            "  4.0 MiB leaked (* allocation*) at:",
            "      test_leaks.py:7 in test_leaks",
            "*_ test_cache_kept_by_the_filter _*",
            "*leaked 4.0 MiB in 1 stack*",
            "      test_leaks.py:34 in test_cache_kept_by_the_filter",
            "      test_leaks.py:20 in fill_cache",
        ],
        consecutive=False,
    )
    result.stdout.fnmatch_lines(["test_leaks.py M...M. *"])
    assert "MEMORY PROBLEMS test_leaks.py::test_leaks " in result.stdout.str()
    assert "MEMORY PROBLEMS test_leaks.py::test_cache_kept_by_the_filter " in result.stdout.str()


NUMBERS_TESTS = """
        import pytest

        def test_ten_mib():
            data = bytearray(10 * 2**20)
            del data

        KEEP = []

        @pytest.mark.limit_memory("1 MB")
        def test_keeps_two_mib():
            KEEP.append(bytearray(2 * 2**20))

        def test_nothing():
            pass

        def test_skips_itself():
            pytest.skip("not here")
"""


def test_json_report_has_each_tests_numbers(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_numbers=NUMBERS_TESTS)
    result = run(pytester, "--memlens-json", "out/memory.json")
    assert result.ret == pytest.ExitCode.USAGE_ERROR  # the directory must exist
    assert "--memlens-json: directory" in result.stderr.str()

    result = run(pytester, "--memlens-json", "memory.json")
    result.assert_outcomes(passed=2, failed=1, skipped=1)
    report = json.loads((pytester.path / "memory.json").read_text())
    tests = {t["nodeid"]: t for t in report["tests"]}
    assert list(tests) == [
        "test_numbers.py::test_ten_mib",
        "test_numbers.py::test_keeps_two_mib",
        "test_numbers.py::test_nothing",
        "test_numbers.py::test_skips_itself",
    ]

    check_each_tests_numbers(tests)
    ten = tests["test_numbers.py::test_ten_mib"]
    assert report["totals"] == {
        "tests": 4,
        "passed": 2,
        "failed": 1,
        "skipped": 1,
        "peak_bytes": ten["peak_bytes"],
        "peak_nodeid": "test_numbers.py::test_ten_mib",
        "alloc_bytes": sum(t["alloc_bytes"] for t in tests.values()),
        "alloc_count": sum(t["alloc_count"] for t in tests.values()),
        "leak_bytes": sum(t["leak_bytes"] for t in tests.values()),
    }
    assert report["memlens_json_version"] == 1 and report["python_allocators"] is True


def check_each_tests_numbers(tests: dict[str, Any]) -> None:
    ten = tests["test_numbers.py::test_ten_mib"]
    assert abs(ten["peak_bytes"] - 10 * MiB) <= KiB
    assert 10 * MiB <= ten["alloc_bytes"] <= 10 * MiB + 4 * KiB
    assert ten["alloc_count"] >= 1
    assert ten["leak_bytes"] <= KiB
    top = ten["top_lines"][0]
    assert top["file"].endswith("test_numbers.py")
    assert (top["line"], top["function"]) == (4, "test_ten_mib")
    assert abs(top["peak_bytes"] - 10 * MiB) <= KiB
    assert ten["limit_memory"] is None and ten["limit_leaks"] is None
    assert (ten["passed"], ten["outcome"]) == (True, "passed")

    two = tests["test_numbers.py::test_keeps_two_mib"]
    assert abs(two["peak_bytes"] - 2 * MiB) <= KiB
    assert abs(two["leak_bytes"] - 2 * MiB) <= KiB
    assert (two["limit_memory"], two["limit_leaks"]) == (MiB, None)
    assert (two["passed"], two["outcome"], two["memory_problem"]) == (False, "failed", True)
    assert ten["memory_problem"] is False
    skipped = tests["test_numbers.py::test_skips_itself"]
    assert (skipped["passed"], skipped["outcome"]) == (False, "skipped")

    nothing = tests["test_numbers.py::test_nothing"]
    # an empty test: nothing of pytest's or memlens' own work is charged to it
    assert (nothing["peak_bytes"], nothing["alloc_bytes"], nothing["alloc_count"]) == (0, 0, 0)
    assert (nothing["leak_bytes"], nothing["passed"]) == (0, True)


def test_report_lists_the_tests_with_the_highest_peak(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_sizes="""
        def test_one():
            data = bytearray(1 * 2**20)

        def test_thirty():
            data = bytearray(30 * 2**20)

        def test_twenty():
            data = bytearray(20 * 2**20)

        def test_none():
            pass
        """
    )
    result = run(pytester, "--memlens", "--most-allocations", "2")
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines(
        [
            "*= memlens report =*",
            "2 of 4 tracked tests with the highest peak (call phase only):",
            "",
            "test_sizes.py::test_thirty",
            "    peak 30.0 MiB, allocated 30.0 MiB in * allocations, leaked *",
            "      30.0 MiB  test_sizes.py:5 in test_thirty",
            "",
            "test_sizes.py::test_twenty",
            "    peak 20.0 MiB, *",
            "      20.0 MiB  test_sizes.py:8 in test_twenty",
        ]
    )
    assert "test_sizes.py::test_one" not in result.stdout.str()


def test_xdist_workers_track_and_the_controller_merges(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_spread="""
        import pytest

        @pytest.mark.parametrize("mib", [1, 2, 3, 4, 5, 6])
        def test_sized(mib):
            data = bytearray(mib * 2**20)

        @pytest.mark.limit_memory("1 MB")
        def test_over():
            data = bytearray(8 * 2**20)
        """
    )
    result = run(
        pytester, "-n", "2", "--memlens", "--most-allocations", "3", "--memlens-json", "x.json"
    )
    result.assert_outcomes(passed=6, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*Test was limited to 1 MB (1048576 B) but allocated 8.0 MiB at its peak",
            "*= memlens report =*",
            "3 of 7 tracked tests with the highest peak (call phase only):",
            "test_spread.py::test_over  MEMORY PROBLEMS",
            "    peak 8.0 MiB, *",
            "test_spread.py::test_sized[6]",
            "test_spread.py::test_sized[5]",
        ],
        consecutive=False,
    )
    assert result.stdout.str().count("= memlens report =") == 1
    report = json.loads((pytester.path / "x.json").read_text())
    peaks = {t["nodeid"]: t["peak_bytes"] for t in report["tests"]}
    assert len(peaks) == 7
    for mib in range(1, 7):
        # execnet's I/O thread, talking to the controller during the test, is harness too
        assert abs(peaks[f"test_spread.py::test_sized[{mib}]"] - mib * MiB) <= KiB
    assert report["totals"]["failed"] == 1


def test_bad_limit_is_a_collection_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_bad="""
        import pytest

        @pytest.mark.limit_memory("10 parsecs")
        def test_unit():
            pass

        @pytest.mark.limit_leaks("lots")
        def test_number():
            pass

        @pytest.mark.limit_leaks("1 MB")
        @pytest.mark.limit_memory("1 MB")
        def test_two_markers():
            pass

        @pytest.mark.limit_memory("1 MB", current_thread_only="yes")
        def test_flag():
            pass

        def test_fine():
            pass
        """
    )
    result = run(pytester)
    assert result.ret == pytest.ExitCode.INTERRUPTED  # collection errors stop the run
    result.stdout.fnmatch_lines(
        [
            "*ERROR collecting test_bad.py*",
            "test_bad.py::test_unit: @pytest.mark.limit_memory: invalid size '10 parsecs': "
            "unknown unit 'parsecs'; expected a number and a unit, such as '10 MB'*",
            "test_bad.py::test_number: @pytest.mark.limit_leaks: invalid size 'lots': expected*",
            "test_bad.py::test_two_markers: one limit marker per test, found 2: "
            "@pytest.mark.limit_leaks, @pytest.mark.limit_memory",
            "test_bad.py::test_flag: @pytest.mark.limit_memory: current_thread_only must be True "
            "or False",
        ]
    )
    assert "passed" not in result.stdout.str()


def test_markers_work_without_memlens_and_are_registered(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_marked="""
        import pytest

        @pytest.mark.limit_memory("10 MB")
        def test_over():
            data = bytearray(20 * 2**20)

        def test_untracked():
            data = bytearray(20 * 2**20)

        @pytest.mark.limit_memory("10 MB")
        def test_own_failure_wins():
            data = bytearray(20 * 2**20)
            assert len(data) == 0
        """
    )
    result = run(pytester, "--strict-markers")
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines(
        [
            "*but allocated 20.0 MiB at its peak",
            "*_ test_own_failure_wins _*",
            ">       assert len(data) == 0",
            "E       AssertionError*",
        ],
        consecutive=False,
    )
    # Once in the failures section, not for the test that failed by itself (the short summary
    # repeats messages in full when $CI is set, so count before it).
    failures = result.stdout.str().split("short test summary info")[0]
    assert failures.count("but allocated 20.0 MiB") == 1
    assert "memlens report" not in result.stdout.str()


def test_without_python_allocators_the_buffer_is_still_caught(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_native="""
        import pytest

        @pytest.mark.limit_memory("10 MB")
        def test_over():
            data = bytearray(20 * 2**20)
        """
    )
    result = run(pytester, "--memlens-no-python-allocators", "--memlens-json", "n.json")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*but allocated 20.0 MiB at its peak", "      test_native.py:5 in test_over"]
    )
    report = json.loads((pytester.path / "n.json").read_text())
    assert report["python_allocators"] is False
    assert abs(report["tests"][0]["peak_bytes"] - 20 * MiB) <= 4 * KiB

    pytester.makeini("[pytest]\nmemlens_python_allocators = false\n")
    result = run(pytester, "--memlens-json", "ini.json")
    assert json.loads((pytester.path / "ini.json").read_text())["python_allocators"] is False


def test_threads_are_tracked_and_subprocesses_keep_working(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_concurrency="""
        import subprocess
        import sys
        import threading

        import pytest

        def worker(out):
            out.append(bytearray(20 * 2**20))

        @pytest.mark.limit_memory("10 MB")
        def test_thread():
            out = []
            thread = threading.Thread(target=worker, args=(out,))
            thread.start()
            thread.join()
            assert len(out[0]) == 20 * 2**20

        @pytest.mark.limit_memory("10 MB")
        def test_subprocess():
            code = "x = bytearray(50 * 2**20); print(len(x))"
            done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
            assert done.stdout.strip() == str(50 * 2**20)
        """
    )
    result = run(pytester, "--memlens")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*_ test_thread _*",
            "*but allocated 20.0 MiB at its peak",
            "*test_concurrency.py:8 in worker",
        ],
        consecutive=False,
    )


def test_usage_errors(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_a():\n    pass\n")
    for option, value, error in [
        ("--most-allocations", "-1", "--most-allocations: expected 0 or more, got -1"),
        ("--stacks", "0", "--stacks: expected 1 or more frames, got 0"),
        ("--fail-on-increase", None, "--fail-on-increase keeps the peaks in pytest's cache, "
         "which is disabled (-p no:cacheprovider)"),
    ]:  # fmt: skip
        result = run(pytester, option, *([value] if value else []))
        assert result.ret == pytest.ExitCode.USAGE_ERROR
        assert f"ERROR: {error}" in result.stderr.lines

    (pytester.path / "taken").mkdir()
    result = run(pytester, "--memlens-json", "taken")  # a directory where the file should go
    assert result.ret == pytest.ExitCode.INTERNAL_ERROR  # the tests passed, but CI must notice
    result.stdout.fnmatch_lines(
        [f"memlens: error: cannot write {pytester.path / 'taken'}: Is a directory"]
    )
    assert not [p for p in pytester.path.iterdir() if p.name.endswith(".tmp")]


def test_under_memlens_run_marked_tests_say_why_they_are_not_checked(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        test_nested="""
        import pytest

        @pytest.mark.limit_memory("10 MB")
        def test_marked():
            pass

        def test_plain():
            pass
        """
    )
    # The whole run is tracked already: one tracker per process, so the plugin cannot track.
    result = pytester.run(
        sys.executable, "-m", "memlens", "run", "-o", "run.msgpack",
        "-m", "pytest", "-p", "no:cacheprovider", "--memlens",
    )  # fmt: skip
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "memlens could not track this test: memlens is already tracking this process*",
            "*= memlens report =*",
            "no test was tracked",
            "memlens: 2 tests were not tracked: memlens is already tracking this process*",
        ],
        consecutive=False,
    )
    assert (pytester.path / "run.msgpack").stat().st_size > 0


def test_no_memlens_leaves_a_test_to_its_own_tracker(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_own="""
        import pytest
        from memlens import Tracker

        @pytest.mark.no_memlens
        def test_uses_a_tracker():
            with Tracker(None, checkpoint_interval=0) as tracker:
                data = bytearray(3 * 2**20)
            assert tracker.profile.totals.peak_bytes >= 3 * 2**20

        def test_tracked():
            data = bytearray(2 * 2**20)
        """
    )
    result = run(pytester, "--memlens", "--strict-markers")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        ["1 of 1 tracked tests with the highest peak*", "test_own.py::test_tracked"]
    )

    pytester.makepyfile(
        test_contradiction="""
        import pytest

        @pytest.mark.no_memlens
        @pytest.mark.limit_memory("1 MB")
        def test_both():
            pass
        """
    )
    result = run(pytester, "test_contradiction.py")
    result.stdout.fnmatch_lines(
        [
            "*ERROR collecting test_contradiction.py*",
            "test_contradiction.py::test_both: @pytest.mark.no_memlens contradicts*",
        ]
    )
