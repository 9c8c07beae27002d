"""Size parsing and stack trimming of the limit markers (pure functions, no tracker)."""

from __future__ import annotations

import sysconfig

import pytest

from memlens import capture, measures
from memlens.model import Frame, Profile
from memlens.pytest_limits import (
    Focus,
    Limit,
    Listing,
    Scope,
    _test_frames_start,
    format_stack,
    leak_filter_stack,
    own_nodes,
    own_profile,
    own_usage,
    parse_limit,
)


def is_test_stack(frames: list[Frame]) -> bool:
    """Whether the test's code is on the stack (pytest's own bookkeeping during the call is
    not the test's memory). Stacks without pytest on them (threads) are the test's: the rule
    own_nodes applies to the trie, stack by stack."""
    return _test_frames_start(frames) is not None


# The marker's text is parsed by memlens.units.parse_size (tested there); the limit keeps the
# user's words next to the exact byte count.
@pytest.mark.parametrize(
    ("text", "limit"),
    [
        ("10 MB", Limit(10_485_760, "10 MB (10485760 B)")),
        ("10MiB", Limit(10_485_760, "10MiB (10485760 B)")),
        ("  1.5   gib ", Limit(1_610_612_736, "1.5 gib (1610612736 B)")),
        ("512 B", Limit(512, "512 B")),
        ("512", Limit(512, "512 (512 B)")),
        (4096, Limit(4096, "4096 B")),
    ],
)
def test_parse_limit(text: object, limit: Limit) -> None:
    assert parse_limit(text) == limit


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("10 parsecs", "unknown unit 'parsecs'"),
        (None, "expected a number and a unit"),
        (-5, "cannot be negative"),
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
        "...and 3 more frames",
        *(f"/proj/deep.py:{i} in f{i}" for i in range(4, 9)),
    ]
    assert format_stack(frames, root="/elsewhere", indent="", frames_shown=7) == [
        "...and 1 more frame",
        *(f"/proj/deep.py:{i} in f{i}" for i in range(2, 9)),
    ]
    assert len(format_stack(frames, indent="", frames_shown=None)) == 8


def test_with_a_focus_the_stack_starts_at_the_test_function() -> None:
    wrapper = Frame("Wrapper.pytest_pyfunc_call", "/proj/conftest.py", 7, 5)
    test = Frame("TestA.test_a", "/proj/test_a.py", 3, 2)
    frames = [*HARNESS, wrapper, HARNESS[2], test, Frame("make", "/proj/x.py", 4, 3)]
    assert format_stack(
        frames, root="/proj", indent="", focus=Focus("/proj/test_a.py", 2, "test_a")
    ) == [
        "test_a.py:3 in TestA.test_a",
        "x.py:4 in make",
    ]
    # without it, the first frame after pytest's is the plugin's wrapper
    assert (
        format_stack(frames, root="/proj", indent="", frames_shown=None)[0]
        == "conftest.py:7 in Wrapper.pytest_pyfunc_call"
    )


@pytest.mark.parametrize(
    ("verbosity", "frames", "listing"),
    [
        (-2, None, Listing(1, 1)),
        (-1, None, Listing(1, 1)),
        (0, None, Listing(3, 5)),
        (1, None, Listing(10, 10)),
        (2, None, Listing(None, None)),
        (3, None, Listing(None, None)),
        (0, 2, Listing(3, 2)),
        (2, 4, Listing(None, 4)),
    ],
)
def test_verbosity_sets_how_much_of_a_failure_is_listed(
    verbosity: int, frames: int | None, listing: Listing
) -> None:
    assert Listing.for_verbosity(verbosity, frames) == listing


def test_a_stack_inside_the_harness_is_shown_as_it_is() -> None:
    assert format_stack(HARNESS[:2], indent="") == [
        "/venv/bin/pytest:8 in <module>",
        "/venv/lib/python3.11/site-packages/_pytest/config/__init__.py:180 in main",
    ]
    assert format_stack([], indent="") == ["<no Python frame>"]


def test_leak_filters_get_the_innermost_frame_first() -> None:
    stack = leak_filter_stack([Frame("test_a", "t.py", 3, 1), Frame("fill", "c.py", 9, 8)])
    # pytest-memray's shape: a stack object with .frames, each with .function/.filename/.lineno
    assert [(f.function, f.filename, f.lineno) for f in stack.frames] == [
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


def make_profile(rows: list[tuple[list[Frame] | None, int, int]]) -> Profile:
    """A capture with one stats row per (stack path or None for no Python frame, thread,
    bytes); every metric of a row is its bytes; thread 1 is named "main"."""
    frames: list[Frame] = []
    parent: list[int] = []
    node_frame: list[int] = []
    nodes: dict[tuple[int, Frame], int] = {}
    ends = []
    for path, _, _ in rows:  # build the trie: one node per distinct prefix
        node = -1
        for frame in path or []:
            if frame not in frames:
                frames.append(frame)
            if (node, frame) not in nodes:
                nodes[(node, frame)] = len(parent)
                parent.append(node)
                node_frame.append(frames.index(frame))
            node = nodes[(node, frame)]
        ends.append(-1 if path is None else node)
    threads = sorted({thread for _, thread, _ in rows})
    names = {thread: "main" if thread == 1 else f"Thread-{thread}" for thread in threads}
    strings = sorted({f.file for f in frames} | {f.function for f in frames} | set(names.values()))
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
        "stats": {
            "stack": ends,
            "thread": [thread for _, thread, _ in rows],
            "domain": [0] * len(rows),
        }
        | {m: [size for _, _, size in rows] for m in measures.COLUMNS},
        # the rows add up to the run's totals, as the tracker writes them (capture.py checks)
        "totals": dict.fromkeys(
            ("alloc_count", "alloc_bytes", "peak_bytes", "leak_bytes"), sum(s for *_, s in rows)
        )
        | {"peak_ns": 0, "rss_peak": 0},
        "timeline": {"t_ms": [], "heap": [], "rss": []},
        "threads": {"id": threads, "name": [strings.index(names[t]) for t in threads]},
    }
    return capture.from_dict(raw)


STDLIB = sysconfig.get_paths()["stdlib"]
CONTEXTLIB = Frame("helper", STDLIB + "/contextlib.py", 301, 299)
TEST = Frame("test_a", "/proj/test_a.py", 3, 1)
THREAD = Frame("_bootstrap", STDLIB + "/threading.py", 995, 990)
WORK = Frame("work", "/proj/w.py", 4, 3)


def test_own_nodes_follow_the_same_rule_as_is_test_stack() -> None:
    paths = [
        HARNESS,
        [*HARNESS, CONTEXTLIB],
        [*HARNESS, CONTEXTLIB, TEST],
        [*HARNESS, TEST, CONTEXTLIB],
    ]
    paths += [[THREAD], [THREAD, WORK], [HARNESS[0]], [HARNESS[0], WORK]]
    profile = make_profile([(path, 1, 10**i) for i, path in enumerate(paths)] + [(None, 1, 7)])
    mine = own_nodes(profile)
    ends = profile.stats.stack.tolist()[:-1]
    assert [bool(mine[end]) for end in ends] == [is_test_stack(path) for path in paths]
    # pytest's own stacks are not; a stack without pytest on it (threads, runpy) is
    assert [is_test_stack(path) for path in paths] == [False, False] + [True] * 6
    # six stacks of the test, and the stack-less row (a native thread)
    assert own_usage(own_profile(profile, Scope())).peak_bytes == 11111100 + 7


def test_with_a_focus_only_the_test_functions_stacks_count_on_its_thread() -> None:
    wrapper = Frame("Wrapper.pytest_pyfunc_call", "/proj/conftest.py", 7, 5)
    main, other, channel = 1, 2, 3
    profile = make_profile(
        [
            ([*HARNESS, wrapper], main, 1),  # another plugin's hook wrapper around the call
            ([*HARNESS, wrapper, HARNESS[2], TEST], main, 10),  # the test, under the wrapper
            ([*HARNESS, TEST, WORK], main, 100),  # the test's callee
            ([*HARNESS, CONTEXTLIB], main, 1000),  # pytest's bookkeeping
            (None, main, 10_000),  # no Python frame on the test's thread
            ([THREAD, WORK], other, 100_000),  # a thread the test started
            (None, other, 1_000_000),  # a native thread
            ([THREAD, HARNESS[1]], channel, 10_000_000),  # e.g. xdist's channel thread
        ]
    )
    focus = Focus("/proj/test_a.py", 1, "test_a")
    assert own_usage(own_profile(profile, Scope(focus, "main"))).alloc_bytes == 1_100_110
    only_main = own_profile(profile, Scope(focus, "main", current_thread_only=True))
    assert own_usage(only_main).alloc_bytes == 110
    assert [s.frames[-1].function for s in only_main.top_stacks("alloc_bytes")] == [
        "work",
        "test_a",
    ]
    # without a test function: everything below pytest's frames on the test's thread
    assert (
        own_usage(own_profile(profile, Scope(None, "main", current_thread_only=True))).alloc_bytes
        == 111
    )
