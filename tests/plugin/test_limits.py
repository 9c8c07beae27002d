"""Size parsing and stack trimming of the limit markers (pure functions, no tracker)."""

from __future__ import annotations

import sysconfig

import pytest

from memlens import capture
from memlens.model import METRICS, Frame
from memlens.pytest_limits import (
    Limit,
    format_stack,
    is_test_stack,
    leak_filter_stack,
    own_nodes,
    own_usage,
    parse_limit,
)


@pytest.mark.parametrize(
    ("text", "limit"),
    [
        ("10 MB", Limit(10_000_000, "10.0 MB (10000000 B)")),
        ("24mb", Limit(24_000_000, "24.0 MB (24000000 B)")),
        ("10MiB", Limit(10 * 2**20, "10.0 MiB (10485760 B)")),
        ("1.5 gib", Limit(3 * 2**29, "1.5 GiB (1610612736 B)")),
        ("512 B", Limit(512, "512 B")),
        ("2 kb", Limit(2000, "2.0 KB (2000 B)")),
        ("+3 KiB", Limit(3072, "3.0 KiB (3072 B)")),
        (" 1 GB ", Limit(10**9, "1.0 GB (1000000000 B)")),
        (4096, Limit(4096, "4096 B")),
    ],
)
def test_parse_limit(text: object, limit: Limit) -> None:
    assert parse_limit(text) == limit


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("10", "expected a number and a unit"),
        ("", "expected a number and a unit"),
        ("MB", "expected a number and a unit"),
        ("-1 MB", "expected a number and a unit"),
        ("10 parsecs", "unknown unit 'parsecs'"),
        ("1e3 MB", "expected a number and a unit"),
        (None, "expected a number and a unit"),
        (-5, "cannot be negative"),
        (True, "expected a number and a unit"),
    ],
)
def test_parse_limit_rejects(text: object, why: str) -> None:
    with pytest.raises(ValueError, match="invalid size") as error:
        parse_limit(text)
    assert why in str(error.value)


HARNESS = [
    # The `pytest` script (under `python -m pytest` runpy's frames would be here; capture.py
    # drops those from the root of every stack, which would renumber the nodes below).
    Frame("<module>", "/venv/bin/pytest", 8, 1),
    Frame("main", "/venv/lib/python3.11/site-packages/_pytest/config/__init__.py", 180, 170),
    Frame("_multicall", "/venv/lib/python3.11/site-packages/pluggy/_callers.py", 121, 60),
    Frame(
        "pytest_runtest_call", "/venv/lib/python3.11/site-packages/memlens/pytest_plugin.py", 9, 1
    ),
    Frame("pytest_pyfunc_call", "/venv/lib/python3.11/site-packages/_pytest/python.py", 166, 150),
]


def test_stacks_start_at_the_test() -> None:
    frames = [
        *HARNESS,
        Frame("test_big", "/proj/tests/test_x.py", 8, 7),
        Frame("make", "/proj/x.py", 4, 3),
    ]
    assert format_stack(frames, root="/proj", indent="") == [
        "tests/test_x.py:8 in test_big",
        "x.py:4 in make",
    ]


def test_deep_stacks_keep_the_innermost_frames() -> None:
    frames = [*HARNESS] + [Frame(f"f{i}", "/proj/deep.py", i, i) for i in range(1, 9)]
    assert format_stack(frames, root="/elsewhere", indent="") == [
        "...",
        *(f"/proj/deep.py:{i} in f{i}" for i in range(4, 9)),
    ]


def test_a_stack_inside_the_harness_is_shown_as_it_is() -> None:
    assert format_stack(HARNESS[:2], indent="") == [
        "/venv/bin/pytest:8 in <module>",
        "/venv/lib/python3.11/site-packages/_pytest/config/__init__.py:180 in main",
    ]
    assert format_stack([], indent="") == ["<no Python frame>"]


def test_leak_filters_get_the_innermost_frame_first() -> None:
    stack = leak_filter_stack([Frame("test_a", "t.py", 3, 1), Frame("fill", "c.py", 9, 8)])
    assert [(f.function, f.filename, f.lineno) for f in stack] == [
        ("fill", "c.py", 9),
        ("test_a", "t.py", 3),
    ]


def test_which_stacks_are_the_tests() -> None:
    contextlib = sysconfig.get_paths()["stdlib"] + "/contextlib.py"
    through_stdlib = [*HARNESS, Frame("helper", contextlib, 301, 299)]
    assert not is_test_stack(through_stdlib)  # pytest's own context managers
    assert is_test_stack([*through_stdlib, Frame("test_a", "/proj/test_a.py", 3, 1)])
    thread = [
        Frame("_bootstrap", "/usr/lib/python3.11/threading.py", 995, 990),
        Frame("work", "/proj/w.py", 4, 3),
    ]
    assert is_test_stack(thread)  # a thread the test started: no pytest on its stack
    assert is_test_stack([])  # native code with no Python frame


def test_own_nodes_follow_the_same_rule_as_is_test_stack() -> None:
    contextlib = Frame("helper", sysconfig.get_paths()["stdlib"] + "/contextlib.py", 301, 299)
    test = Frame("test_a", "/proj/test_a.py", 3, 1)
    thread = Frame("_bootstrap", sysconfig.get_paths()["stdlib"] + "/threading.py", 995, 990)
    work = Frame("work", "/proj/w.py", 4, 3)
    paths = [
        HARNESS,
        [*HARNESS, contextlib],
        [*HARNESS, contextlib, test],
        [*HARNESS, test, contextlib],
    ]
    paths += [[thread], [thread, work], [HARNESS[0]], [HARNESS[0], work]]
    frames: list[Frame] = []
    parent: list[int] = []
    node_frame: list[int] = []
    nodes: dict[tuple[int, Frame], int] = {}
    ends = []
    for path in paths:  # build the trie: one node per distinct prefix
        node = -1
        for frame in path:
            if frame not in frames:
                frames.append(frame)
            if (node, frame) not in nodes:
                nodes[(node, frame)] = len(parent)
                parent.append(node)
                node_frame.append(frames.index(frame))
            node = nodes[(node, frame)]
        ends.append(node)
    strings = sorted({f.file for f in frames} | {f.function for f in frames} | {"main"})
    n = len(ends)
    raw = {
        "magic": "memlens-capture",
        "version": 1,
        "complete": True,
        "meta": {},
        "strings": strings,
        "frames": {
            "function": [strings.index(f.function) for f in frames],
            "file": [strings.index(f.file) for f in frames],
            "line": [f.line for f in frames],
            "first_line": [f.first_line for f in frames],
        },
        "stacks": {"parent": parent, "frame": node_frame},
        "stats": {"stack": [*ends, -1], "thread": [1] * (n + 1), "domain": [0] * (n + 1)}
        | {m: [10 ** (i % 6)] * n + [7] for i, m in enumerate(METRICS)},
        "totals": dict.fromkeys(
            ("alloc_count", "alloc_bytes", "peak_bytes", "peak_ns", "leak_bytes", "rss_peak"), 0
        ),
        "timeline": {"t_ms": [], "heap": [], "rss": []},
        "threads": {"id": [1], "name": [strings.index("main")]},
    }
    profile = capture.from_dict(raw)
    mine = own_nodes(profile)
    assert [bool(mine[end]) for end in ends] == [is_test_stack(path) for path in paths]
    # pytest's own stacks are not; a stack without pytest on it (threads, runpy) is
    assert [is_test_stack(path) for path in paths] == [False, False] + [True] * 6
    # six stacks of the test, and the stack-less row (a native thread)
    peak_column = METRICS.index("peak_bytes")
    assert own_usage(profile).peak_bytes == 6 * 10 ** (peak_column % 6) + 7
