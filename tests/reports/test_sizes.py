"""The exact size histogram and the allocator breakdown in every report (stats, json, the flame
graph's stats panel), on a hand-built capture with known counts; and captures without them."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import capture_writer
import msgpack
import pytest
import test_flamegraph_page as page_tests
from synthetic import LOAD, MAIN, build, values

from memlens import capture
from memlens.model import Profile
from memlens.reports import flamegraph, json_report, stats

browser = page_tests.browser  # the module's headless Chromium

# malloc(0), calloc(1, 64), realloc(p, 127), an 80,000,000 B list buffer, mmap of 5,000 B
SIZES = {
    "domain": [0, 1, 1, 2],
    "bucket_log2": [26, -1, 6, 12],
    "count": [1, 1, 2, 1],
    "bytes": [80_000_000, 0, 191, 5000],
}
ALLOCATORS = [("malloc", 1, 0), ("calloc", 1, 64), ("realloc", 1, 127)]
ALLOCATORS += [("pymem", 1, 80_000_000), ("mmap", 1, 5000)]
TOTAL_BYTES = 80_005_191


def exact_raw() -> dict[str, Any]:
    raw = capture_writer.to_dict(build([([MAIN, LOAD], values(peak=TOTAL_BYTES, count=5))]))
    raw["sizes"] = copy.deepcopy(SIZES)
    strings = raw["strings"]
    raw["allocators"] = {
        "name": list(range(len(strings), len(strings) + len(ALLOCATORS))),
        "count": [c for _, c, _ in ALLOCATORS],
        "bytes": [b for _, _, b in ALLOCATORS],
    }
    strings += [name for name, _, _ in ALLOCATORS]
    return raw


def exact_profile() -> Profile:
    return capture.loads(msgpack.packb(exact_raw()))


EXPECTED_HISTOGRAM = [
    (0, 0, 1, 0),
    (64, 127, 2, 191),
    (4096, 8191, 1, 5000),
    (2**26, 2**27 - 1, 1, 80_000_000),
]
EXPECTED_ALLOCATORS = [
    ("pymem", 1, 80_000_000),
    ("mmap", 1, 5000),
    ("realloc", 1, 127),
    ("calloc", 1, 64),
    ("malloc", 1, 0),
]


def test_stats_json_has_the_exact_histogram_and_the_allocators() -> None:
    data = stats.build(exact_profile())
    assert json.loads(json.dumps(data)) == data
    assert data["size_histogram_estimated"] is False
    histogram = data["size_histogram"]
    assert [(b["min_bytes"], b["max_bytes"], b["count"], b["bytes"]) for b in histogram] == (
        EXPECTED_HISTOGRAM
    )
    assert histogram[1]["by_domain"] == {
        "python": {"count": 0, "bytes": 0},
        "native": {"count": 2, "bytes": 191},
        "mmap": {"count": 0, "bytes": 0},
    }
    assert [(a["name"], a["count"], a["bytes"]) for a in data["allocators"]] == (
        EXPECTED_ALLOCATORS
    )
    assert data["allocators"][0]["label"] == "PyMem (Python's mem domain)"


def test_stats_text_shows_exact_sizes_and_the_allocator_table() -> None:
    text = stats.render(exact_profile(), width=120)
    assert "Allocation sizes (every allocation, counted exactly)" in text
    assert "ESTIMATED" not in text
    assert "0 B (zero-size requests)" in text and "0 B to < 1 B" not in text

    def cells(label: str) -> list[str]:
        (line,) = [line for line in text.splitlines() if line.startswith(label + "  ")]
        return line[len(label) :].split()

    assert cells("0 B (zero-size requests)")[:3] == ["1", "0", "B"]
    assert cells("64 B to < 128 B")[:3] == ["2", "191", "B"]
    assert cells("4.0 KiB to < 8.0 KiB")[:3] == ["1", "4.9", "KiB"]
    assert cells("64.0 MiB to < 128.0 MiB")[:3] == ["1", "76.3", "MiB"]
    assert cells("PyMem (Python's mem domain)") == ["1", "76.3", "MiB", "100.0%"]
    assert cells("malloc") == ["1", "0", "B", "0.0%"]


def test_json_report_has_both() -> None:
    data = json_report.build(exact_profile())
    assert [(b["min_bytes"], b["count"]) for b in data["size_histogram"]] == [
        (low, count) for low, _, count, _ in EXPECTED_HISTOGRAM
    ]
    assert data["size_histogram_estimated"] is False
    assert [a["name"] for a in data["allocators"]] == [n for n, _, _ in EXPECTED_ALLOCATORS]


def test_old_captures_are_estimated_and_say_so() -> None:
    raw = exact_raw()
    del raw["sizes"], raw["allocators"]
    profile = capture.loads(msgpack.packb(raw))
    assert profile.sizes is None and profile.allocators is None
    data = stats.build(profile)
    assert data["size_histogram_estimated"] is True and data["allocators"] is None
    text = stats.render(profile, width=120)
    assert "Allocation sizes, ESTIMATED" in text
    assert "Allocators: not counted in this capture (made by an older memlens)" in text
    assert json_report.build(profile)["allocators"] is None


def test_sizes_and_allocators_survive_a_round_trip() -> None:
    profile = exact_profile()
    again = capture.loads(capture_writer.dumps(profile))
    assert again.sizes is not None and profile.sizes is not None
    assert again.sizes.bytes.tolist() == SIZES["bytes"]
    assert again.sizes.bucket_log2.tolist() == SIZES["bucket_log2"]
    assert again.allocators == profile.allocators


def _edit(path: str, value: object) -> Any:
    table, key, index = path.split(".")

    def edit(raw: dict[str, Any]) -> None:
        raw[table][key][int(index)] = value

    return edit


def _twice(raw: dict[str, Any]) -> None:
    raw["sizes"]["bucket_log2"][2] = -1


def _same_name(raw: dict[str, Any]) -> None:
    raw["allocators"]["name"][1] = raw["allocators"]["name"][0]


def _more_than_total(raw: dict[str, Any]) -> None:
    raw["allocators"]["count"][0] = 2


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (_edit("sizes.domain.0", 3), "'sizes.domain' refers outside [0, 3)"),
        (_edit("sizes.bucket_log2.0", 64), "'sizes.bucket_log2' refers outside [-1, 64)"),
        (_edit("sizes.count.0", -1), f"'sizes.count' has a value outside [0, {2**63 - 1}]"),
        (_edit("sizes.bytes.1", 1), "'sizes.bytes' is 1 for 1 allocations in bucket_log2 -1"),
        (_edit("sizes.bytes.2", 127), "'sizes.bytes' is 127 for 2 allocations in bucket_log2 6"),
        (_edit("sizes.bytes.2", 255), "'sizes.bytes' is 255 for 2 allocations in bucket_log2 6"),
        (_edit("sizes.count.0", True), "'sizes.count' is not a list of integers"),
        (_twice, "'sizes' has a (domain, bucket_log2) twice"),
        (_edit("allocators.name.0", 99), "'allocators.name' refers outside [0, 9)"),
        (_same_name, "'allocators.name' names an allocator twice"),
        (_more_than_total, "'allocators.count' adds up to more than 'totals.alloc_count'"),
        (_edit("sizes.count.1", 2), "'sizes.count' adds up to more than 'totals.alloc_count'"),
    ],
)
def test_malformed_sizes_and_allocators_are_refused(edit: Any, message: str) -> None:
    raw = exact_raw()
    edit(raw)
    with pytest.raises(capture.CaptureError) as caught:
        capture.loads(msgpack.packb(raw), source="x.msgpack")
    assert str(caught.value) == f"x.msgpack: corrupt capture: {message}"


def test_too_many_size_entries_are_refused() -> None:
    raw = exact_raw()
    raw["sizes"] = {key: [0] * 196 for key in SIZES}
    with pytest.raises(capture.CaptureError, match="'sizes' has 196 entries, more than 195"):
        capture.from_dict(raw)


def _panel(browser: Any, profile: Profile, folder: Path) -> tuple[list[list[str]], ...]:
    opened = page_tests.Page(browser, flamegraph.render(profile), folder)
    try:
        opened.page.click("#run-stats summary")
        cells = "t => [t.caption.textContent, ...[...t.rows].map(r => [...r.cells]"
        cells += ".map(c => c.textContent).join('|'))]"
        allocators = opened.page.eval_on_selector("#run-allocators", cells)
        sizes = opened.page.eval_on_selector("#run-sizes", cells)
        assert opened.errors == [] and opened.dialogs == []
        return allocators, sizes
    finally:
        opened.close()


def test_flame_graph_stats_panel_shows_allocators_and_sizes(browser: Any, tmp_path: Path) -> None:
    allocators, sizes = _panel(browser, exact_profile(), tmp_path)
    assert allocators == [
        "Allocators",
        "allocator|allocations|allocated|share",
        "PyMem (Python's mem domain)|1|76.3 MiB|100.0%",
        "mmap|1|4.9 KiB|0.0%",
        "realloc (and reallocarray)|1|127 B|0.0%",
        "calloc|1|64 B|0.0%",
        "malloc|1|0 B|0.0%",
    ]
    assert sizes == [
        "Allocation sizes (every allocation, counted exactly)",
        "size|count|bytes",
        "0 B (zero-size requests)|1|0 B",
        "64 B to < 128 B|2|191 B",
        "4.0 KiB to < 8.0 KiB|1|4.9 KiB",
        "64.0 MiB to < 128.0 MiB|1|76.3 MiB",
    ]


def test_flame_graph_stats_panel_of_an_old_capture(browser: Any, tmp_path: Path) -> None:
    profile = build([([MAIN, LOAD], values(peak=3000, count=3))])
    allocators, sizes = _panel(browser, profile, tmp_path)
    assert allocators == ["Allocators: not counted in this capture (made by an older memlens)"]
    assert sizes[0].startswith("Allocation sizes, ESTIMATED")
    assert sizes[1:] == ["size|count|bytes", "512 B to < 1.0 KiB|3|2.9 KiB"]
