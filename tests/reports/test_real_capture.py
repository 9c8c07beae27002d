"""Every report on a capture made by the real tracker from a script with known allocations."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from known_script import BIG_CALL_LINE, BIG_LINE, LEAK_LINE, MIB

from memlens.cli import main as memlens
from memlens.model import Profile
from memlens.reports import flamegraph, lines, stats, summary, table, tree

WIDE = 250  # columns: no path of a temporary directory is clipped


def near(value: int, expected: int, slack: int = 1024) -> bool:
    return abs(value - expected) <= slack


def test_table_has_the_10_mib_line(real_profile: Profile, real_capture: tuple[Path, Path]) -> None:
    script = str(real_capture[1])
    rows = table.build(real_profile)
    big = [r for r in rows if r.file == script and r.line == BIG_LINE]
    assert big, [r.location for r in rows[:10]]
    assert near(big[0].bytes, 10 * MIB) and big[0].function == "make_big"
    assert rows[0] is big[0]  # the biggest line at the peak
    # wide enough for the whole temporary path (longer under pytest-xdist: .../popen-gw0/...)
    text = table.render(real_profile, limit=5, width=WIDE)
    assert re.search(
        rf"10\.0 MiB\s+\d+\s+[\d.]+%\s+10\.0 MiB\s+{re.escape(script)}:{BIG_LINE}\s+make_big", text
    )
    leaks = table.build(real_profile, "leaks")
    leak = [r for r in leaks if r.file == script and r.line == LEAK_LINE]
    assert leak and near(leak[0].bytes, 2 * MIB)


def test_cli_table(
    real_capture: tuple[Path, Path], capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", str(WIDE))
    assert memlens(["table", str(real_capture[0]), "--limit", "3"]) == 0
    out = capsys.readouterr().out
    first_row = out.splitlines()[3]  # title, header, rule, then the biggest line
    assert f"{real_capture[1]}:{BIG_LINE}" in first_row
    assert first_row.lstrip().startswith("10.0 MiB")


def test_lines_shows_it_on_the_source_line(
    real_profile: Profile, real_capture: tuple[Path, Path]
) -> None:
    path, listing = lines.build(real_profile, "known.py")
    assert path == str(real_capture[1])
    by_line = {n.line: n for n in listing}
    assert by_line[BIG_LINE].text == "    return bytearray(10 * 2**20)"
    assert near(by_line[BIG_LINE].peak_bytes, 10 * MIB)
    assert near(by_line[BIG_LINE].self_peak_bytes, 10 * MIB)
    assert near(by_line[BIG_CALL_LINE].peak_bytes, 10 * MIB)  # inclusive of make_big
    assert by_line[BIG_CALL_LINE].self_peak_bytes < 1024
    assert by_line[2].peak_bytes == 0 and by_line[2].text == ""
    _, only = lines.build(real_profile, "known.py", "make_big")
    assert [n.line for n in only] == [4, 5]


def test_summary_peak(real_profile: Profile, real_capture: tuple[Path, Path]) -> None:
    data = summary.build(real_profile)
    assert data["exit_code"] == 3
    assert 10 * MIB <= data["peak_bytes"] < 12 * MIB
    assert 0 <= data["peak_s"] <= data["duration_s"]
    top = data["top_lines"][0]
    assert (top["file"], top["line"], top["function"]) == (
        str(real_capture[1]),
        BIG_LINE,
        "make_big",
    )
    assert [f["function"] for f in top["stack"]][-3:] == ["<module>", "main", "make_big"]
    assert near(data["leak_bytes"], 2 * MIB, 64 * 1024)


def test_flamegraph_data_has_the_frame(
    real_profile: Profile, real_capture: tuple[Path, Path]
) -> None:
    page = flamegraph.render(real_profile)
    match = re.search(r'id="memlens-data">(.*?)</script>', page, re.S)
    assert match
    data = json.loads(match.group(1))
    frames, nodes = data["frames"], data["nodes"]
    hits = [
        i
        for i, f in enumerate(nodes["frame"])
        if frames["function"][f] == "make_big"
        and frames["line"][f] == BIG_LINE
        and frames["file"][f] == str(real_capture[1])
    ]
    assert len(hits) == 1
    assert near(nodes["value"][hits[0]], 10 * MIB)
    assert frames["kind"][nodes["frame"][hits[0]]] == "user"


def test_tree_and_stats(real_profile: Profile, real_capture: tuple[Path, Path]) -> None:
    roots = tree.build(real_profile, stacks=1)
    node = roots[0]
    while node.children:
        node = node.children[0]
    assert (node.function, node.line) == ("make_big", BIG_LINE)
    data = stats.build(real_profile)
    assert data["capture"]["exit_code"] == 3
    assert data["top_by_size"][0]["line"] in (BIG_LINE, LEAK_LINE, 10)
    # the histogram is estimated per line, but it accounts for every allocation and byte
    assert sum(b["count"] for b in data["size_histogram"]) == data["totals"]["alloc_count"]
    assert sum(b["bytes"] for b in data["size_histogram"]) == data["totals"]["alloc_bytes"]
    assert data["size_histogram"][-1]["max_bytes"] >= 5 * MIB  # 10 MiB in 2 allocations
    assert data["threads"][0]["name"]


def test_commands_as_a_user_runs_them(real_capture: tuple[Path, Path], tmp_path: Path) -> None:
    import subprocess
    import sys

    cap, script = real_capture

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "memlens", *args], capture_output=True, text=True, timeout=60
        )

    summary_run = run("summary", str(cap))
    assert summary_run.returncode == 0, summary_run.stderr
    assert re.search(r"Peak memory:\s+10\.\d MiB at ", summary_run.stdout)
    assert f"{script}:{BIG_LINE}" in summary_run.stdout
    assert "Exit code:        3" in summary_run.stdout
    lines_run = run("lines", str(cap), "known.py", "--function", "make_big")
    assert lines_run.returncode == 0, lines_run.stderr
    (row,) = [
        line for line in lines_run.stdout.splitlines() if line.lstrip().startswith(f"{BIG_LINE} ")
    ]
    assert re.match(
        rf"\s*{BIG_LINE}\s+10\.0 MiB\s+10\.0 MiB\s+10\.0 MiB\s+10\.0 MiB\s+    return", row
    )
    truncated = tmp_path / "cut.msgpack"
    truncated.write_bytes(cap.read_bytes()[:-100])
    bad = run("table", str(truncated))
    assert bad.returncode == 2
    assert bad.stderr.strip() == f"memlens table: error: {truncated}: truncated or corrupt capture"
    missing = run("lines", str(cap), "other.py")
    assert missing.returncode == 2 and missing.stderr.startswith(
        "memlens lines: error: other.py is not"
    )
    assert len(missing.stderr.splitlines()) == 1


def test_real_page_click_opens_the_line(
    real_profile: Profile, real_capture: tuple[Path, Path], tmp_path: Path
) -> None:
    import os

    import pytest

    if not os.path.exists("/usr/bin/chromium"):
        pytest.skip("Debian's chromium is not installed: run `bash scripts/ensure-chromium.sh`")
    from playwright.sync_api import sync_playwright

    page_file = tmp_path / "real.html"
    page_file.write_text(flamegraph.render(real_profile))
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium")
        try:
            page = browser.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("console", lambda m: m.type == "error" and errors.append(m.text))
            page.add_init_script(
                "window.__opened = [];"
                'document.addEventListener("memlens-open", (e) => window.__opened.push(e.detail));'
            )
            page.goto(page_file.as_uri())
            # boxes show their source line: make_big's allocating line, and the call in main
            texts = page.eval_on_selector_all(".frame", "els => els.map(e => e.textContent)")
            assert "big = make_big()" in texts
            page.locator(".frame", has_text="return bytearray(10 * 2**20)").first.click()
            assert page.evaluate("window.__opened") == [
                {"type": "open", "file": str(real_capture[1]), "line": BIG_LINE}
            ]
            assert errors == []
        finally:
            browser.close()
