"""`@pytest.mark.limit_leaked_objects(n)` on every supported version, through pytester and the
real tracker: a test that keeps more than n objects it made alive fails, and the failure names
their type, line and holder; cycles the test dropped are collected first, not counted."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]


def run(pytester: pytest.Pytester) -> pytest.RunResult:
    # A fresh interpreter: the tracker is one per process, and the outer run may be tracked.
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:randomly", "-q")


def test_limit_leaked_objects(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_objects="""
        import pytest

        class Registry:
            items = []

        @pytest.mark.limit_leaked_objects(10)
        def test_keeps_objects():
            Registry.items.extend(bytearray(10) for _ in range(1_000))

        @pytest.mark.limit_leaked_objects(10)
        def test_drops_them():
            data = [bytearray(10) for _ in range(1_000)]
            del data

        @pytest.mark.limit_leaked_objects(10)
        def test_cycles_are_collected_first():
            for _ in range(1_000):
                pair = [None]
                pair[0] = [pair]

        @pytest.mark.limit_leaked_objects(1_000)
        def test_within_its_limit():
            Registry.items.extend(bytearray(10) for _ in range(500))
        """
    )
    result = run(pytester)
    result.assert_outcomes(passed=3, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*test_keeps_objects*",
            "Test was limited to 10 leaked Python objects but 1,000 it allocated are still alive:",
            "  1,000 bytearray (*) allocated at:",
            "      ...and 1 more frame",
            "      test_objects.py:8 in *<genexpr>",
            "      held (1,000): Registry.items (list, 1,000 items) <- class Registry"
            " <- module test_objects",
        ]
    )


@pytest.mark.parametrize(
    ("args", "says"),
    [
        ("'10'", "takes one count of objects, an int >= 0"),
        ("-1", "takes one count of objects, an int >= 0"),
        ("10, filter_fn=None", "unexpected argument 'filter_fn'"),
    ],
)
def test_bad_limits_are_one_line(pytester: pytest.Pytester, args: str, says: str) -> None:
    pytester.makepyfile(
        test_bad=f"""
        import pytest

        @pytest.mark.limit_leaked_objects({args})
        def test_one():
            pass
        """
    )
    result = run(pytester)
    assert result.ret != 0
    result.stdout.fnmatch_lines([f"*@pytest.mark.limit_leaked_objects*{says}*"])
