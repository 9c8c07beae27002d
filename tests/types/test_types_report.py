"""`memlens types`, `memlens diff CAP --from A --to B` and the JSON's types, on real runs of a
script with known objects: 10,000 bytearray(1000) in a class attribute's dict, and a list of
100,000 strs made between two snapshots."""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import pytest
from real_runs import Run

from memlens import capture
from memlens.cli import main as memlens
from memlens.reports import diff, json_report, types

SCRIPT = textwrap.dedent(
    """\
    import memlens


    class Cache:
        entries = {}


    def fill():
        for i in range(10_000):
            Cache.entries[i] = bytearray(1000)  # line 10


    def words():
        return [str(i) for i in range(100_000)]  # line 14


    memlens.snapshot("before")
    fill()
    kept = words()
    memlens.snapshot("after")
    """
)
FILL_LINE, WORDS_LINE = 10, 14
BYTEARRAYS = 10_000 * sys.getsizeof(bytearray(1000))  # the objects and their buffers
STRS = sum(sys.getsizeof(str(i)) for i in range(100_000))
HELD = "Cache.entries (dict, 10,000 items) <- class Cache <- module __main__"


@pytest.fixture(scope="module")
def cache_capture(run_script: Run) -> Path:
    return run_script("cache", SCRIPT)


def test_types_at_exit(cache_capture: Path) -> None:
    profile = capture.load(cache_capture)
    rows = types.by_type(profile, types.snapshot_at(profile))
    first = rows[0]
    assert (first.type, first.count, first.bytes) == ("bytearray", 10_000, BYTEARRAYS)
    site = first.sites[0]
    assert (Path(site.file).name, site.line, site.function) == ("cache.py", FILL_LINE, "fill")
    assert (site.count, site.bytes) == (10_000, BYTEARRAYS)
    assert first.holder == HELD
    strs = next(r for r in rows if r.type == "str")
    top = strs.sites[0]
    assert (top.line, top.count, top.bytes) == (WORDS_LINE, 100_000, STRS)
    assert strs.holder == "__main__.kept (list, 100,000 items) <- module __main__"


def test_cli_types(
    cache_capture: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(cache_capture.parent)
    monkeypatch.setenv("COLUMNS", "100")
    assert memlens(["types", str(cache_capture), "--limit", "1"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("Live Python objects at exit (") and out[0].endswith(" s in), by type")
    assert out[1].split() == ["type", "objects", "bytes", "sites", "(objects,", "bytes);", "holder"]
    assert out[3].split()[:4] == ["bytearray", "10,000", "10.1", "MiB"]
    # the sites column, unwrapped: the site with its source line, then the holder
    column = " ".join(line[out[2].rindex(" ") + 1 :].strip() for line in out[3:-1])
    assert column == (
        "cache.py:10 (10,000, 10.1 MiB): Cache.entries[i] = bytearray(1000)  # line 10"
        f" held by {HELD}"
    )
    assert out[-1].startswith("... ") and out[-1].endswith(
        " more types (--limit N, or --limit 0 for all)"
    )


def test_cli_types_at_a_label_and_json(
    cache_capture: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert memlens(["types", str(cache_capture), "--at", "before", "--json"]) == 0
    before = json.loads(capsys.readouterr().out)
    assert "bytearray" not in {t["type"] for t in before}
    assert memlens(["types", str(cache_capture), "--at", "after", "--json", "--limit", "1"]) == 0
    (after,) = json.loads(capsys.readouterr().out)
    assert after["type"] == "bytearray" and after["count"] == 10_000
    assert after["sites"][0]["line"] == FILL_LINE and after["holder"] == HELD


def test_unknown_label_lists_the_labels(
    cache_capture: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert memlens(["types", str(cache_capture), "--at", "nope"]) == 2
    assert capsys.readouterr().err == (
        "memlens types: error: no snapshot 'nope' in the capture;"
        " there are: 'before', 'after', 'exit'\n"
    )
    assert memlens(["diff", str(cache_capture), "--from", "before", "--to", "later"]) == 2
    assert "no snapshot 'later' in the capture" in capsys.readouterr().err


def test_snapshot_diff_shows_the_strs_at_their_line(cache_capture: Path) -> None:
    profile = capture.load(cache_capture)
    before, after = types.snapshot_at(profile, "before"), types.snapshot_at(profile, "after")
    per_type, per_site = diff.by_object(profile, before, profile, after)
    by_name = {c.type: c for c in per_type}
    assert (by_name["str"].count, by_name["str"].bytes) == (100_000, STRS)
    assert (by_name["bytearray"].count, by_name["bytearray"].bytes) == (10_000, BYTEARRAYS)
    assert per_type[0].type == "bytearray"  # the biggest change of bytes first
    strs = next(c for c in per_site if c.type == "str")
    assert strs.site is not None and strs.site[1] == WORDS_LINE
    assert (strs.old, strs.new) == ((0, 0), (100_000, STRS))


def test_cli_snapshot_diff(
    cache_capture: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(cache_capture.parent)
    assert memlens(["diff", str(cache_capture), "--from", "before", "--to", "after"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("From snapshot 'before' to 'after' (+")
    sites = out[out.index("... and by the line that made them") :].splitlines()
    row = next(line for line in sites if line.endswith(" str at cache.py:14"))
    assert row.split()[:2] == ["100,000", "+100,000"]


def test_json_report_has_types_per_snapshot(cache_capture: Path) -> None:
    data = json_report.build(capture.load(cache_capture))
    assert [s["label"] for s in data["snapshots"]] == ["before", "after", "exit"]
    exit_types = data["snapshots"][-1]["types"]
    assert exit_types[0] == {
        "type": "bytearray",
        "count": 10_000,
        "bytes": BYTEARRAYS,
        "sites": [
            {
                "file": str(cache_capture.parent / "cache.py"),
                "line": FILL_LINE,
                "function": "fill",
                "count": 10_000,
                "bytes": BYTEARRAYS,
            }
        ],
        "holder": HELD,
    }
    assert all(s["complete"] for s in data["snapshots"])


CYCLES = textwrap.dedent(
    """\
    import gc

    gc.disable()


    class Node:
        pass


    def pairs():
        for _ in range(5_000):
            a, b = Node(), Node()  # line 12
            a.other, b.other = b, a


    pairs()
    """
)


def test_uncollected_cycles_are_named_as_such(run_script: Run) -> None:
    profile = capture.load(run_script("cycles", CYCLES))
    snapshot = types.snapshot_at(profile)
    nodes = next(r for r in types.by_type(profile, snapshot) if r.type == "__main__.Node")
    assert nodes.count == 10_000 and nodes.sites[0].line == 12
    (holder,) = [h for h in snapshot.holders if h.type == "__main__.Node"]
    assert holder.root == "unreachable" and nodes.holder == holder.text
    assert types.nearest_holder(holder) == "an uncollected reference cycle"
