"""Report builders on hand-built captures: exact numbers for every format."""

from __future__ import annotations

import json
import re

import pytest
from synthetic import BOOT, JSON, LOAD, MAIN, PARSE, build, example, values, with_referenced

from memlens import measures
from memlens.model import DOMAINS
from memlens.reports import flamegraph, json_report, lines, sizes, stats, summary, table, tree

MIB = 2**20


def test_summary_build() -> None:
    data = summary.build(example())
    assert json.loads(json.dumps(data)) == data  # JSON-able as is
    assert data["peak_bytes"] == 9 * MIB + 512 * 1024 + 4096
    assert data["peak_ns"] == 500_000_000 and data["peak_s"] == 0.5
    assert data["duration_s"] == 2.0
    assert data["alloc_count"] == 114
    assert data["leak_bytes"] == MIB
    assert data["exit_code"] == 0
    first = data["top_lines"][0]
    assert (first["file"], first["line"], first["function"]) == ("/app/lib.py", 20, "parse")
    assert first["peak_bytes"] == 6 * MIB and first["peak_count"] == 3
    assert [f["function"] for f in first["stack"]] == ["<module>", "load", "parse"]
    # the import under <module> line 10 is charged to that line, not to importlib's
    assert [e["line"] for e in data["top_lines"]] == [20, 5, 353, 10]
    imported = data["top_lines"][3]
    assert imported["import_peak_bytes"] == imported["peak_bytes"] == 512 * 1024
    assert [f["line"] for f in imported["stack"]] == [10]
    assert data["imports"] == {"peak_bytes": 512 * 1024, "alloc_bytes": 768 * 1024, "folded": True}
    shown = summary.build(example(), show_imports=True)
    assert [e["line"] for e in shown["top_lines"]] == [20, 5, 353, 1178]
    assert shown["top_lines"][3]["import_peak_bytes"] == 0


def test_summary_render() -> None:
    text = summary.render(example())
    assert "Peak memory:      9.5 MiB at 0.50 s" in text
    assert re.search(r"1\s+6\.0 MiB\s+63\.1%\s+/app/lib\.py:20\s+parse", text)
    assert "load  /app/main.py:5" in text
    boxed = summary.render(example(), boxed=True)
    assert "┃" in boxed and "│" in boxed


def test_summary_without_an_exit_snapshot_does_not_split_live_memory() -> None:
    text = summary.render(example())
    assert "Live at exit:     1.0 MiB still allocated when tracking stopped\n" in text
    assert (
        "\nLive at exit = never freed before tracking stopped, referenced or lost: this capture\n"
        "has no exit snapshot to tell them apart (`memlens table CAP --leaks` lists where).\n"
    ) in text
    shown = summary.build(example())
    assert (shown["leak_bytes"], shown["referenced_bytes"], shown["lost_bytes"]) == (
        MIB,
        None,
        None,
    )


def test_summary_splits_live_memory_into_referenced_and_lost() -> None:
    profile = with_referenced(example(), 768 * 1024)
    shown = summary.build(profile)
    assert (shown["leak_bytes"], shown["referenced_bytes"], shown["lost_bytes"]) == (
        MIB,
        768 * 1024,
        256 * 1024,
    )
    assert shown["referenced_complete"] is True
    text = summary.render(profile)
    assert "Live at exit:     1.0 MiB: 768.0 KiB still referenced, 256.0 KiB lost\n" in text
    assert (
        "\nStill referenced = live at exit and reachable from a module global, class attribute,\n"
        "running frame or C global: memory a program keeps to its end. Lost = live at exit and\n"
        "reachable from none of them (dropped C buffers, uncollected reference cycles).\n"
        "`memlens table CAP --lost` lists where lost memory was allocated, `memlens types CAP`\n"
    ) in text
    cut = summary.render(with_referenced(example(), 768 * 1024, complete=False), width=200)
    assert "768.0 KiB still referenced (at least: the marking ran out of time), 256.0 KiB" in cut


def test_table_of_lost_and_referenced_memory() -> None:
    profile = with_referenced(example(), 768 * 1024)
    lost = table.build(profile, "lost")
    referenced = table.build(profile, "referenced")
    assert [(r.location, r.bytes, r.count) for r in lost] == [
        ("/usr/lib/python3.11/json/decoder.py:353", 256 * 1024, 99)
    ]
    assert [(r.location, r.bytes, r.count) for r in referenced] == [
        ("/usr/lib/python3.11/json/decoder.py:353", 768 * 1024, 1)
    ]
    text = table.render(profile, "lost", width=120)
    assert text.endswith(measures.EXIT_TERMS)
    assert table.render(example(), "leaks", width=120).endswith(measures.NOT_SPLIT)
    live = "Live at exit:     1.0 MiB in 100"
    assert f"{live} (768.0 KiB still referenced, 256.0 KiB lost)\n" in stats.render(profile)
    assert f"{live}\n" in stats.render(example())


def test_summary_of_nothing() -> None:
    text = summary.render(build([], exit_code=None))
    assert "Exit code:        unknown" in text
    assert "Live at exit:     0 B still allocated when tracking stopped\n" in text
    assert "Live at exit =" not in text
    assert "No allocations live at the peak." in text


def test_table_peak_rows() -> None:
    rows = table.build(example())
    assert [(r.location, r.bytes, r.count, r.inclusive) for r in rows] == [
        ("/app/lib.py:20", 6 * MIB, 3, 6 * MIB),
        ("/app/main.py:5", 2 * MIB, 2, 8 * MIB),
        ("/usr/lib/python3.11/json/decoder.py:353", MIB, 100, MIB),
        ("<frozen importlib._bootstrap>:1178", 512 * 1024, 7, 512 * 1024),
        ("(no Python frame)", 4096, 1, 4096),
    ]
    assert sum(r.share for r in rows) == pytest.approx(1.0)
    whole = 9 * MIB + 512 * 1024 + 4096
    assert rows[0].share == pytest.approx(6 * MIB / whole)


def test_table_kinds_sort_and_limit() -> None:
    profile = example()
    assert [(r.location, r.bytes) for r in table.build(profile, "leaks")] == [
        ("/usr/lib/python3.11/json/decoder.py:353", MIB)
    ]
    temporary = table.build(profile, "temporary")
    assert [(r.line, r.bytes) for r in temporary] == [(20, 64 * MIB), (1178, 256 * 1024)]
    assert [r.line for r in table.build(profile, "total", sort="count")] == [353, 1178, 20, 5, 0]
    assert [r.location for r in table.build(profile, sort="location", limit=2)] == [
        "(no Python frame)",
        "/app/lib.py:20",
    ]
    assert [r.function for r in table.build(profile, sort="function")][:2] == ["", "_find_and_load"]
    with pytest.raises(ValueError, match="unknown sort column 'size'"):
        table.build(profile, sort="size")
    text = table.render(profile, limit=1)
    assert re.search(r"6\.0 MiB\s+3\s+63\.1%\s+6\.0 MiB\s+/app/lib\.py:20\s+parse", text)


def test_tree() -> None:
    roots = tree.build(example())
    assert [r.function for r in roots] == ["<module>", "(no Python frame)"]
    main = roots[0]
    assert (main.inclusive, main.self_bytes) == (9 * MIB + 512 * 1024, 0)
    assert [(c.function, c.inclusive, c.self_bytes) for c in main.children] == [
        ("load", 8 * MIB, 2 * MIB),
        ("decode", MIB, MIB),
        ("_find_and_load", 512 * 1024, 512 * 1024),
    ]
    assert [c.function for c in main.children[0].children] == ["parse"]
    # only the biggest stack: the others' nodes are not shown, totals stay the capture's
    (only,) = tree.build(example(), stacks=1)
    assert only.inclusive == 9 * MIB + 512 * 1024
    assert [c.function for c in only.children] == ["load"]
    assert only.children[0].children[0].children == []
    text = tree.render(example())
    assert "|  `- parse  /app/lib.py:20" in text
    assert "├─ load" in tree.render(example(), boxed=True)


def test_stats_schema_and_numbers() -> None:
    data = stats.build(example())
    assert list(data) == [
        "schema",
        "capture",
        "totals",
        "size_histogram",
        "size_histogram_estimated",
        "allocators",
        "domains",
        "top_by_size",
        "top_by_count",
        "threads",
        "modules",
    ]
    assert data["schema"] == "memlens-stats/1"
    assert data["capture"] == {
        "complete": True,
        "argv": ["prog.py", "--flag"],
        "pid": 42,
        "python_version": "3.11.2",
        "python_allocators": True,
        "exit_code": 0,
        "duration_s": 2.0,
    }
    assert data["totals"] == {
        "alloc_count": 114,
        "alloc_bytes": 74 * MIB + 2 * MIB + MIB + 768 * 1024 + 4096,
        "peak_bytes": 9 * MIB + 512 * 1024 + 4096,
        "peak_count": 3 + 2 + 100 + 7 + 1,
        "peak_s": 0.5,
        "leak_count": 100,
        "leak_bytes": MIB,
        "referenced_bytes": None,  # no exit snapshot: live at exit not split
        "lost_bytes": None,
        "referenced_complete": None,
        "temp_count": 3,
        "temp_bytes": 64 * MIB + 256 * 1024,
        "rss_peak": 10_000_000 + 9 * MIB + 512 * 1024 + 4096,
    }
    assert json.loads(json.dumps(data)) == data


def test_stats_size_histogram() -> None:
    data = stats.build(example())
    # mean sizes: 4 KiB (1), 10 KiB (100, leaked), 100 KiB (5) and 128 KiB (2, temporary),
    # 1 MiB (2), 3.3 MiB (3), 64 MiB (1, temporary)
    assert [(b["min_bytes"], b["count"]) for b in data["size_histogram"]] == [
        (4096, 1),
        (8192, 100),
        (65536, 5),
        (131072, 2),
        (MIB, 2),
        (2 * MIB, 3),
        (64 * MIB, 1),
    ]
    assert data["size_histogram"][0]["max_bytes"] == 8191
    assert sum(b["count"] for b in data["size_histogram"]) == data["totals"]["alloc_count"]
    assert sum(b["bytes"] for b in data["size_histogram"]) == data["totals"]["alloc_bytes"]
    assert data["size_histogram_estimated"] is True


def test_stats_domains_lines_threads_modules_and_text() -> None:
    data = stats.build(example())
    assert data["domains"]["mmap"] == {
        "alloc_count": 1,
        "alloc_bytes": 64 * MIB,
        "peak_bytes": 0,
        "leak_bytes": 0,
    }
    assert data["domains"]["native"]["peak_bytes"] == 4096
    assert data["domains"]["python"]["alloc_count"] == 112
    assert [e["line"] for e in data["top_by_size"]] == [20, 5, 353, 1178]
    assert [e["line"] for e in data["top_by_count"]] == [353, 1178, 20, 5]
    assert data["top_by_size"][0] == {
        "file": "/app/lib.py",
        "line": 20,
        "function": "parse",
        "alloc_bytes": 74 * MIB,
        "alloc_count": 4,
        "peak_bytes": 6 * MIB,
    }
    assert [(t["id"], t["name"], t["alloc_bytes"]) for t in data["threads"]] == [
        (2, "worker", 64 * MIB + 4096),
        (1, "MainThread", 10 * MIB + 2 * MIB + MIB + 768 * 1024),
    ]
    assert [(m["module"], m["kind"]) for m in data["modules"]] == [
        ("/app/lib.py", "user"),
        ("/app/main.py", "user"),
        ("json", "library"),
        ("importlib", "import"),
    ]
    text = stats.render(example())
    assert "Python objects vs native vs mmap" in text
    assert "Allocation sizes, ESTIMATED" in text and "0 B to < 1 B" not in text


def test_histogram_leaves_out_zero_bytes_and_says_it_is_estimated() -> None:
    profile = build(
        [
            ([MAIN], values(alloc=0, count=5)),
            ([LOAD], values(alloc=1, count=1)),
            ([PARSE], values(alloc=1024 * 3, count=3)),
        ]
    )
    assert [(b["min_bytes"], b["max_bytes"], b["count"]) for b in sizes.histogram(profile)] == [
        (1, 1, 1),
        (1024, 2047, 3),
    ]


def test_json_report() -> None:
    data = json_report.build(example())
    assert data["schema"] == "memlens-lines/1"
    by_line = {(e["file"], e["line"]): e for e in data["lines"]}
    load = by_line[("/app/main.py", 5)]
    # the usage keys follow the model's metrics and domains (written out for speed)
    assert list(load["self"]) == [
        *measures.COLUMNS,
        "peak_bytes_by_domain",
        "alloc_bytes_by_domain",
    ]
    assert list(load["self"]["peak_bytes_by_domain"]) == list(DOMAINS)
    assert list(load["inclusive"]["alloc_bytes_by_domain"]) == list(DOMAINS)
    assert load["function"] == "load"
    assert load["inclusive"]["peak_bytes"] == 8 * MIB
    assert load["self"]["peak_bytes"] == 2 * MIB
    assert load["inclusive"]["alloc_bytes_by_domain"] == {
        "python": 12 * MIB,
        "native": 0,
        "mmap": 64 * MIB,
    }
    assert [(f["function"], f["first_line"]) for f in data["functions"]][:3] == [
        ("parse", 18),
        ("<module>", 1),
        ("load", 3),
    ]
    assert json.loads(json.dumps(data)) == data


def test_lines_resolves_and_lists_source(tmp_path, monkeypatch) -> None:
    source = tmp_path / "app.py"
    source.write_text("import os\n\ndef make():\n    return bytearray(100)\n\nx = make()\n")
    file = str(source)
    make = ("make", file, 4, 3)
    module = ("<module>", file, 6, 1)
    profile = build([([module, make], values(peak=100, alloc=300, count=3))])
    path, listing = lines.build(profile, file)
    assert path == file
    assert [(n.line, n.peak_bytes, n.alloc_bytes, n.self_peak_bytes) for n in listing] == [
        (1, 0, 0, 0),
        (2, 0, 0, 0),
        (3, 0, 0, 0),
        (4, 100, 300, 100),
        (5, 0, 0, 0),
        (6, 100, 300, 0),
    ]
    assert listing[3].text == "    return bytearray(100)"
    # relative path, base name, function
    monkeypatch.chdir(tmp_path)
    assert lines.build(profile, "app.py")[0] == file
    assert lines.build(profile, "./app.py")[0] == file
    _, only = lines.build(profile, "app.py", "make")
    assert [n.line for n in only] == [3, 4]
    text = lines.render(profile, "app.py", "make")
    assert re.search(r"4\s+100 B\s+300 B\s+100 B\s+300 B\s+    return bytearray\(100\)", text)


def test_lines_errors() -> None:
    profile = example()
    with pytest.raises(lines.LookupFailed, match=r"^nope\.py is not in the capture; files"):
        lines.build(profile, "nope.py")
    with pytest.raises(lines.LookupFailed, match=r"^no function 'nope' with memory in /app/main"):
        lines.build(profile, "/app/main.py", "nope")
    twice = build(
        [([("f", "/a/x.py", 1, 1)], values(peak=1)), ([("g", "/b/x.py", 1, 1)], values(peak=1))]
    )
    with pytest.raises(lines.LookupFailed, match=r"x\.py matches 2 files in the capture"):
        lines.build(twice, "x.py")
    assert lines.build(twice, "b/x.py")[0] == "/b/x.py"


def test_lines_without_source_shows_lines_with_memory() -> None:
    _, listing = lines.build(example(), "/app/main.py")
    assert [(n.line, n.text) for n in listing] == [(5, None), (10, None)]
    assert "source not available" in lines.render(example(), "main.py")


# --- flame graph data ------------------------------------------------------------------------


def test_flamegraph_data_exact() -> None:
    data = flamegraph.data(example())
    frames, nodes = data["frames"], data["nodes"]
    assert data["total"] == 9 * MIB + 512 * 1024 + 4096
    by_name = {frames["function"][f]: i for i, f in enumerate(nodes["frame"])}
    parse = by_name["parse"]
    assert nodes["value"][parse] == 6 * MIB and nodes["count"][parse] == 3
    assert nodes["parent"][parse] == by_name["load"]
    assert frames["file"][nodes["frame"][parse]] == "/app/lib.py"
    assert frames["line"][nodes["frame"][parse]] == 20
    kinds = dict(zip(frames["function"], frames["kind"], strict=True))
    assert kinds == {
        "<module>": "user",
        "load": "user",
        "parse": "user",
        "decode": "library",
        "_find_and_load": "import",
        "(no Python frame)": "none",
    }
    assert data["merged_nodes"] == 0
    assert data["timeline"] == {
        "t_ms": [0, 500, 1000],
        "heap": [0, data["peak_bytes"], 0],
        "rss": [10_000_000, 10_000_000 + data["peak_bytes"], 10_000_000],
    }
    leaks = flamegraph.data(example(), "leak_bytes")
    assert leaks["total"] == MIB
    assert sum(leaks["nodes"]["value"]) == MIB


def test_flamegraph_merges_small_frames() -> None:
    # one big stack and 50 tiny ones under load: each tiny one is 0.001% of the whole
    tiny = [([MAIN, LOAD, ("t", "/app/t.py", i, 1)], values(peak=10)) for i in range(50)]
    profile = build(
        [([MAIN, LOAD, PARSE], values(peak=1_000_000)), *tiny, ([JSON], values(peak=3))]
    )
    data = flamegraph.data(profile)
    names = data["frames"]["function"]
    shown = [names[f] for f in data["nodes"]["frame"]]
    assert shown == ["<module>", "load", "parse", "(1 small frame)", "(50 small frames)"]
    small = shown.index("(50 small frames)")
    assert data["nodes"]["value"][small] == 500
    assert data["nodes"]["parent"][small] == shown.index("load")
    assert data["nodes"]["parent"][shown.index("(1 small frame)")] == -1
    assert data["merged_nodes"] == 51
    assert data["threshold"] == 1001  # 0.1% of 1,000,503, rounded up
    assert sum(data["nodes"]["value"]) == data["total"] == 1_000_503


def test_flamegraph_timeline_decimation_keeps_the_peak() -> None:
    n = 10_000
    heap = [i % 97 for i in range(n)]
    heap[7777] = 1_000_000
    profile = build(
        [([MAIN], values(peak=1_000_000))],
        duration_ns=n * 1_000_000,  # a timeline inside the run, under the peak (capture.py)
        timeline=(list(range(n)), heap, heap),
    )
    timeline = flamegraph.data(profile)["timeline"]
    assert len(timeline["t_ms"]) == flamegraph.MAX_TIMELINE_POINTS
    assert max(timeline["heap"]) == 1_000_000


def test_embed_json_escapes_script_breakers() -> None:
    text = flamegraph.embed_json({"f": "</script><!-- & \u2028\u2029 >"})
    for raw in ("<", ">", "&", "\u2028", "\u2029"):
        assert raw not in text
    assert json.loads(text) == {"f": "</script><!-- & \u2028\u2029 >"}


def _embedded(page: str) -> dict:
    match = re.search(
        r'<script type="application/json" id="memlens-data"[^>]*>(.*?)</script>', page, re.S
    )
    assert match
    return json.loads(match.group(1))


def test_page_is_self_contained_and_has_a_csp() -> None:
    page = flamegraph.render(example())
    assert not re.search(r"(src|href)=\"(https?:)?//", page)  # nothing from the network
    assert "http://" not in page.replace("http://www.w3.org/2000/svg", "")
    csp = re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', page)
    assert csp
    policy = csp.group(1)
    assert policy.startswith("default-src &#x27;none&#x27;; script-src &#x27;sha256-")
    assert _embedded(page)["total"] == 9 * MIB + 512 * 1024 + 4096
    assert page.count("<script") == 2


def test_page_with_nonce() -> None:
    page = flamegraph.render(example(), nonce="abc123", csp_source="vscode-webview://x")
    assert page.count('nonce="abc123"') == 3  # style, data, script
    assert page.count("<script") + page.count("<style") == 3
    assert (
        "default-src &#x27;none&#x27;; script-src &#x27;nonce-abc123&#x27;; "
        "style-src &#x27;nonce-abc123&#x27; vscode-webview://x; img-src vscode-webview://x data:"
    ) in page
    with pytest.raises(ValueError, match="nonce"):
        flamegraph.render(example(), nonce='x" onload="alert(1)')


def test_page_escapes_untrusted_names() -> None:
    evil_function = "<img src=x onerror=alert(1)>"
    evil_file = "</script><script>alert(2)</script>"
    profile = build(
        [([MAIN, (evil_function, evil_file, 3, 1)], values(peak=MIB)), ([BOOT], values(peak=1))]
    )
    profile.meta.argv.append("</title><script>alert(3)</script>")
    page = flamegraph.render(profile)
    assert evil_function not in page and evil_file not in page
    assert "<script>alert" not in page
    assert "&lt;/title&gt;" in page
    assert evil_function in _embedded(page)["frames"]["function"]


def test_flamegraph_labels_come_from_regular_files_only(tmp_path) -> None:
    import os

    from memlens.reports import sources

    app = tmp_path / "app.py"
    app.write_text("import os\n\tx = [0] * 10  \n")
    fifo = tmp_path / "fifo.py"
    os.mkfifo(fifo)
    texts = sources.LineTexts()
    assert texts.text(str(app), 2) == "x = [0] * 10"
    assert texts.text(str(app), 3) == "" and texts.text(str(app), 0) == ""
    assert texts.text(str(fifo), 1) == ""  # never blocks on a FIFO
    assert texts.text("/dev/zero", 1) == "" and texts.text("<frozen os>", 1) == ""
    assert sources.read_lines(str(app), max_bytes=4) == ["impo"]
    spent = sources.LineTexts(budget=5)
    assert spent.text(str(app), 1) == "impor"  # 5 bytes read in all
    other = tmp_path / "other.py"
    other.write_text("y = 1\n")
    assert spent.text(str(other), 1) == ""  # the budget is spent
    profile = build([([("<module>", str(app), 2, 1)], values(peak=MIB))])
    data = flamegraph.data(profile)
    assert data["frames"]["source"] == ["x = [0] * 10"]


def test_summary_inclusive_peaks_match_the_line_index_for_many_lines() -> None:
    from synthetic import many_stacks

    from memlens import capture

    profile = capture.from_dict(many_stacks(3000))
    data = summary.build(profile, top=150, show_imports=True)
    assert len(data["top_lines"]) == 150  # more lines than one 62-bit mask
    for entry in data["top_lines"]:
        line = profile.lines.line(entry["file"], entry["line"])
        assert line is not None
        assert entry["inclusive_peak_bytes"] == line.inclusive.peak_bytes
        assert entry["peak_bytes"] == line.self.peak_bytes
        assert entry["alloc_count"] == line.self.alloc_count


@pytest.mark.parametrize("kind", ["peak", "total", "leaks", "temporary", "freed"])
def test_table_and_stats_agree_with_the_line_index(kind: str) -> None:
    from synthetic import many_stacks

    from memlens import capture

    profile = capture.from_dict(many_stacks(3000))
    measure = measures.named(kind)
    metric, count_metric = measure.metric, measure.count
    rows = table.build(profile, kind)
    assert len(rows) > 300
    for row in rows:
        line = profile.lines.line(row.file, row.line)
        assert line is not None
        assert (row.bytes, row.count) == (line.self.get(metric), line.self.get(count_metric))
        assert row.inclusive == line.inclusive.get(metric)
    ranked = profile.lines.top("alloc_bytes", stats.TOP, self_only=True)
    top = stats.build(profile)["top_by_size"]
    assert [(e["file"], e["line"], e["alloc_bytes"]) for e in top] == [
        (s.file, s.line, s.self.alloc_bytes) for s in ranked
    ]


def test_lines_never_enumerates_a_huge_line_number(tmp_path) -> None:
    app = tmp_path / "app.py"
    app.write_text("x = 1\ny = [0] * 10\n")
    far = 2**40
    profile = build(
        [
            ([("<module>", str(app), 2, 1)], values(peak=MIB)),
            ([("<module>", str(app), 3, 1)], values(peak=10)),
        ]
    )
    # capture.py refuses such a line in a file; a Profile made in memory can still hold one
    profile.frames[1] = profile.frames[1]._replace(line=far)
    _, listing = lines.build(profile, str(app))
    assert [(n.line, n.text, n.peak_bytes) for n in listing] == [
        (1, "x = 1", 0),
        (2, "y = [0] * 10", MIB),
        (far, None, 10),
    ]
