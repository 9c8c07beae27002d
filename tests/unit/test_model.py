"""The per-line index and stack ranking on hand-built captures with exact numbers."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "reports"))
import synthetic  # noqa: E402
from synthetic import LOAD, MAIN, PARSE, build, values  # noqa: E402

MIB = 2**20


def test_inclusive_and_self_per_line() -> None:
    lines = synthetic.example().lines
    load = lines.line("/app/main.py", 5)
    assert load is not None
    assert load.function == "load"
    # load's own 2 MiB plus parse's 6 MiB below it, at the peak
    assert load.inclusive.peak_bytes == 8 * MIB
    assert load.self.peak_bytes == 2 * MIB
    # over the run: 10 MiB python + 64 MiB mmap in parse, 2 MiB in load
    assert load.inclusive.alloc_bytes == 76 * MIB
    assert load.inclusive.alloc_bytes_by_domain == (12 * MIB, 0, 64 * MIB)
    main = lines.line("/app/main.py", 10)
    assert main is not None
    assert main.inclusive.peak_bytes == 9 * MIB + 512 * 1024  # the no-frame 4 KiB is not under main
    assert main.self.peak_bytes == 0
    assert lines.line("/app/main.py", 11) is None


def test_recursion_counts_once() -> None:
    rec = ("walk", "/app/tree.py", 7, 5)
    profile = build(
        [
            ([MAIN, rec, rec, rec], values(peak=300)),
            ([MAIN, rec], values(peak=100)),
        ]
    )
    walk = profile.lines.line("/app/tree.py", 7)
    assert walk is not None
    assert walk.inclusive.peak_bytes == 400
    assert walk.self.peak_bytes == 400
    function = profile.lines.by_function[("/app/tree.py", "walk", 5)]
    assert function.inclusive.peak_bytes == 400


def test_functions_and_files() -> None:
    lines = synthetic.example().lines
    assert lines.files() == [
        "/app/lib.py",
        "/app/main.py",
        "/usr/lib/python3.11/json/decoder.py",
        "<frozen importlib._bootstrap>",
    ]
    functions = lines.functions_in_file("/app/main.py")
    assert [(f.function, f.first_line) for f in functions] == [("<module>", 1), ("load", 3)]
    assert functions[1].inclusive.peak_bytes == 8 * MIB
    assert [s.line for s in lines.in_file("/app/main.py")] == [5, 10]


def test_top_lines_self_and_inclusive() -> None:
    lines = synthetic.example().lines
    assert [(s.file, s.line) for s in lines.top("peak_bytes", 2)] == [
        ("/app/main.py", 10),
        ("/app/main.py", 5),
    ]
    assert [(s.file, s.line) for s in lines.top("peak_bytes", 2, self_only=True)] == [
        ("/app/lib.py", 20),
        ("/app/main.py", 5),
    ]
    assert [s.line for s in lines.top("leak_bytes", None)] == [10, 353]


def test_stacks_through_and_top_stacks() -> None:
    profile = synthetic.example()
    through = profile.lines.stacks_through("/app/main.py", 5, "peak_bytes", None)
    assert [[f.function for f in s.frames] for s in through] == [
        ["<module>", "load", "parse"],
        ["<module>", "load"],
    ]
    assert [s.usage.peak_bytes for s in through] == [6 * MIB, 2 * MIB]
    own = profile.lines.stacks_through("/app/main.py", 5, "peak_bytes", None, self_only=True)
    assert [s.usage.peak_bytes for s in own] == [2 * MIB]
    assert profile.lines.stacks_through("/app/main.py", 99) == []
    top = profile.top_stacks("alloc_bytes", 2)
    assert [s.usage.alloc_bytes for s in top] == [74 * MIB, 2 * MIB]
    assert top[0].usage.alloc_bytes_by_domain == (10 * MIB, 0, 64 * MIB)
    every = profile.top_stacks("alloc_bytes", None)
    orphan = [s for s in every if s.stack_id == -1]
    assert orphan and orphan[0].frames == () and orphan[0].usage.peak_bytes == 4096
    assert len(every) == 5


def test_node_totals() -> None:
    profile = build([([MAIN, LOAD, PARSE], values(peak=6)), ([MAIN, LOAD], values(peak=2))])
    own, inclusive = profile.node_totals("peak_bytes")
    assert own.tolist() == [0, 2, 6]
    assert inclusive.tolist() == [8, 8, 6]
    assert profile.stack_depth.tolist() == [0, 1, 2]


def test_empty_profile() -> None:
    profile = build([])
    assert profile.lines.files() == []
    assert profile.top_stacks() == []
    own, inclusive = profile.node_totals("peak_bytes")
    assert len(own) == 0 and len(inclusive) == 0


def test_many_stacks_are_ranked_without_building_all() -> None:
    locations = [("f", "/app/many.py", i, 1) for i in range(2000)]
    profile = build([([MAIN, loc], values(peak=i + 1)) for i, loc in enumerate(locations)])
    top = profile.top_stacks("peak_bytes", 3)
    assert [s.usage.peak_bytes for s in top] == [2000, 1999, 1998]
    assert "stacks" not in profile.__dict__  # the cached full list was never needed
    assert np.int64(profile.totals.peak_bytes) == sum(range(1, 2001))


def test_depths_and_scatter_add_match_plain_loops() -> None:
    from memlens.model import _depths, _scatter_add

    rng = np.random.default_rng(1)
    parent = np.array([-1] + [int(rng.integers(-1, i)) for i in range(1, 5000)])
    expected = [0] * len(parent)
    for node, up in enumerate(parent.tolist()):
        if up >= 0:
            expected[node] = expected[up] + 1
    assert _depths(parent).tolist() == expected
    assert _depths(np.arange(-1, 2999)).tolist() == list(range(3000))  # deep recursion
    assert _depths(np.zeros(0, dtype=np.int64)).tolist() == []
    index = rng.integers(0, 50, 1000)
    rows = rng.integers(0, 2**40, (1000, 3))
    target = np.zeros((50, 3), dtype=np.int64)
    _scatter_add(target, index, rows)
    plain = np.zeros((50, 3), dtype=np.int64)
    np.add.at(plain, index, rows)
    assert (target == plain).all()


def test_deep_recursion_is_exact() -> None:
    rec = ("recurse", "/app/deep.py", 3, 1)
    profile = build([([MAIN] + [rec] * 800, values(peak=100)), ([MAIN, rec], values(peak=1))])
    line = profile.lines.line("/app/deep.py", 3)
    assert line is not None
    assert line.inclusive.peak_bytes == 101 and line.self.peak_bytes == 101
    own, inclusive = profile.node_totals("peak_bytes")
    assert inclusive[0] == 101 and own[-1] == 100


LIBRARY = ("decode", "/usr/lib/python3.11/json/decoder.py", 353, 340)


def _view(profile, view: str, metric: str = "peak_bytes") -> dict[tuple[str, int], int]:
    """One view of one measure, by (file, line), zeros left out."""
    sums = profile.line_totals(view, (metric,))[:, 0].tolist()
    _, frames = profile.line_keys
    return {(f.file, f.line): v for f, v in zip(frames, sums, strict=True) if v}


def test_the_three_views_of_one_attribution() -> None:
    from memlens.model import CHARGED, INCLUSIVE, SELF

    profile = build(
        [
            ([MAIN, LOAD], values(peak=4 * MIB)),
            ([MAIN, LOAD, PARSE, LOAD], values(peak=2 * MIB)),  # recursion through load
            ([MAIN, LOAD, LIBRARY], values(peak=1 * MIB)),  # json made it, for load
        ]
    )
    main, load, parse = MAIN[1:3], LOAD[1:3], PARSE[1:3]
    json = LIBRARY[1:3]
    assert _view(profile, SELF) == {load: 6 * MIB, json: 1 * MIB}
    # the recursive stack passes load twice and counts once
    assert _view(profile, INCLUSIVE) == {main: 7 * MIB, load: 7 * MIB, parse: 2 * MIB, json: MIB}
    # json's megabyte is charged to the user's line that called it
    assert _view(profile, CHARGED) == {load: 7 * MIB}
    # the per-line index agrees with the self and inclusive views
    assert profile.lines.line(*load).self.peak_bytes == 6 * MIB
    assert profile.lines.line(*load).inclusive.peak_bytes == 7 * MIB
    with pytest.raises(ValueError, match="unknown per-row view 'inclusive'"):
        profile.row_nodes(INCLUSIVE)


def test_freed_is_one_derived_measure_everywhere() -> None:
    from memlens import measures
    from memlens.model import INCLUSIVE, SELF

    profile = build(
        [
            ([MAIN, LOAD], values(peak=4 * MIB, alloc=10 * MIB, count=5, leak=3 * MIB)),
            ([MAIN, LOAD, PARSE], values(peak=MIB, alloc=2 * MIB, count=2)),
        ]
    )
    freed = measures.named("freed")
    assert (freed.metric, freed.count) == ("freed_bytes", "freed_count")
    assert measures.of_metric("freed_bytes") is freed
    assert _view(profile, SELF, "freed_bytes") == {
        ("/app/main.py", 5): 7 * MIB,
        PARSE[1:3]: 2 * MIB,
    }
    assert (
        _view(profile, INCLUSIVE, "freed_count")
        == {
            ("/app/main.py", 10): 2,  # 5 - 5 leaked in load, 2 in parse
            ("/app/main.py", 5): 2,
            PARSE[1:3]: 2,
        }
    )
    load = profile.lines.line("/app/main.py", 5)
    assert load is not None and load.inclusive.get("freed_bytes") == 9 * MIB
    assert [s.usage.alloc_bytes for s in profile.top_stacks("freed_bytes", None)] == [
        10 * MIB,
        2 * MIB,
    ]
    with pytest.raises(ValueError, match=r"unknown measure 'freeed' \(one of peak, total"):
        measures.named("freeed")


def test_lines_are_built_on_first_access_and_all_zero_stats_give_zeros() -> None:
    from memlens.model import Usage

    profile = build([([MAIN, LOAD], values(peak=0, count=0))])
    lines = profile.lines
    assert len(lines.by_line) == 2 and not lines.by_line._built  # type: ignore[attr-defined]
    load = lines.line("/app/main.py", 5)
    assert load is not None and load.inclusive == Usage() and load.self == Usage()
    assert list(lines.by_line._built) == [("/app/main.py", 5)]  # type: ignore[attr-defined]
    assert "by_function" not in lines.__dict__  # functions wait for their first use
    assert [f.inclusive for f in lines.functions_in_file("/app/main.py")] == [Usage(), Usage()]
