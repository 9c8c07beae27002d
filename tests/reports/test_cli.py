"""The report commands end to end (in process): output, and one-line errors with exit 2."""

from __future__ import annotations

import json
import re
from pathlib import Path

import capture_writer
import msgpack
import pytest
from synthetic import example

from memlens.cli import main as memlens


@pytest.fixture
def cap(tmp_path: Path) -> Path:
    path = tmp_path / "run.msgpack"
    capture_writer.dump(example(), path)
    return path


def one_line_error(capsys, command: str) -> str:
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"memlens {command}: error: ")
    return lines[0]


@pytest.mark.parametrize("command", ["summary", "table", "tree", "stats", "json", "flamegraph"])
def test_bad_captures(command: str, tmp_path: Path, cap: Path, capsys) -> None:
    truncated = tmp_path / "truncated.msgpack"
    truncated.write_bytes(cap.read_bytes()[: cap.stat().st_size // 2])
    foreign = tmp_path / "foreign.msgpack"
    # another program's msgpack (a JSON file reads as "trailing bytes": capture.py's wording)
    foreign.write_bytes(msgpack.packb({"format": "someone else's", "version": 1}))
    missing = tmp_path / "missing.msgpack"
    for path, message in (
        (missing, "no such capture file"),
        (truncated, "truncated or corrupt capture"),
        (foreign, "not a memlens capture"),
        (tmp_path, "is a directory"),
    ):
        assert memlens([command, str(path)]) == 2
        assert message in one_line_error(capsys, command)


def test_bad_arguments(cap: Path, capsys) -> None:
    assert memlens(["table", str(cap), "--sort", "size"]) == 2
    assert "unknown --sort column 'size'" in one_line_error(capsys, "table")
    assert memlens(["table", str(cap), "--limit", "-1"]) == 2
    assert "expected 0 or more" in one_line_error(capsys, "table")
    assert memlens(["table", str(cap), "--total", "--leaks"]) == 2
    one_line_error(capsys, "table")
    assert memlens(["lines", str(cap), "nope.py"]) == 2
    assert "nope.py is not in the capture" in one_line_error(capsys, "lines")
    assert memlens(["lines", str(cap), "main.py", "--function", "nope"]) == 2
    assert "no function 'nope'" in one_line_error(capsys, "lines")
    assert memlens(["lines"]) == 2
    assert "required: CAP, FILE" in one_line_error(capsys, "lines")


def test_outputs(cap: Path, tmp_path: Path, capsys) -> None:
    assert memlens(["summary", str(cap)]) == 0
    out = capsys.readouterr().out
    assert "Peak memory:      9.5 MiB at 0.50 s" in out and "┃" not in out  # not a TTY: plain
    assert memlens(["summary", str(cap), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["peak_ns"] == 500_000_000
    assert memlens(["table", str(cap), "--leaks", "--json"]) == 0
    assert [r["line"] for r in json.loads(capsys.readouterr().out)] == [353]
    assert memlens(["tree", str(cap), "--temporary", "--json"]) == 0
    roots = json.loads(capsys.readouterr().out)
    assert roots[0]["inclusive"] == 64 * 2**20 + 256 * 1024
    assert memlens(["stats", str(cap), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["schema"] == "memlens-stats/1"
    assert memlens(["json", str(cap)]) == 0
    assert json.loads(capsys.readouterr().out)["schema"] == "memlens-lines/1"
    out_json = tmp_path / "index.json"
    assert memlens(["json", str(cap), "-o", str(out_json)]) == 0
    assert json.loads(out_json.read_text())["totals"]["peak_bytes"] == example().totals.peak_bytes


def test_flamegraph_command(cap: Path, tmp_path: Path, capsys) -> None:
    assert memlens(["flamegraph", str(cap)]) == 0
    default = cap.with_suffix(".html")
    assert capsys.readouterr().out.strip() == f"wrote {default}"
    assert '"metric":"peak_bytes"' in default.read_text()
    page = tmp_path / "leaks.html"
    assert memlens(["flamegraph", str(cap), "--leaks", "--inverted", "-o", str(page)]) == 0
    text = page.read_text()
    assert '"metric":"leak_bytes"' in text and '"inverted":true' in text
    before = default.read_text()
    assert memlens(["flamegraph", str(cap), "-o", str(tmp_path / "no" / "such" / "dir.html")]) == 2
    assert "cannot write" in one_line_error(capsys, "flamegraph")
    assert default.read_text() == before


def test_boxes_on_a_terminal_plain_text_in_a_pipe(cap: Path) -> None:
    import os
    import pty
    import subprocess
    import sys

    leader, follower = pty.openpty()
    env = {k: v for k, v in os.environ.items() if k != "MEMLENS_PLAIN"}
    with subprocess.Popen(
        [sys.executable, "-m", "memlens", "table", str(cap)], stdout=follower, env=env
    ) as child:
        os.close(follower)
        chunks = []
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the terminal closed: the child is done
                break
            if not chunk:
                break
            chunks.append(chunk)
        assert child.wait(timeout=60) == 0
    os.close(leader)
    on_terminal = b"".join(chunks).decode()
    assert "┏━" in on_terminal and "│ /app/lib.py:20" in on_terminal
    piped = subprocess.run(
        [sys.executable, "-m", "memlens", "table", str(cap)],
        capture_output=True,
        text=True,
        env=env,
    )
    assert "┏" not in piped.stdout and "│" not in piped.stdout
    assert "/app/lib.py:20" in piped.stdout


def many_lines_capture(folder: Path, n: int = 120) -> Path:
    from synthetic import MAIN, build, values

    deep = [MAIN] + [
        (f"function_with_a_long_name_{d}", f"/app/pkg/deep_{d}.py", d + 1, 1) for d in range(30)
    ]
    profile = build(
        [
            ([MAIN, (f"f{i}", str(folder / "pkg" / "mod.py"), i + 1, 1)], values(peak=1000 + i))
            for i in range(n)
        ]
        + [(deep, values(peak=5000))]
    )
    path = folder / "many.msgpack"
    capture_writer.dump(profile, path)
    return path


def test_table_limit_and_relative_paths(
    tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("COLUMNS", raising=False)
    monkeypatch.chdir(tmp_path)
    cap = many_lines_capture(tmp_path)
    assert memlens(["table", str(cap)]) == 0
    out = capsys.readouterr().out.splitlines()
    rows = [line for line in out if "pkg/mod.py:" in line]
    assert len(rows) == 49  # 50 rows: the biggest is deep_29.py's
    assert out[-1] == "... 71 more rows (--limit N, or --limit 0 for all)"
    assert str(tmp_path) not in "\n".join(out)  # relative to the working directory
    assert rows[0].split() == ["1.1", "KiB", "1", "0.8%", "1.1", "KiB", "pkg/mod.py:120", "f119"]
    assert memlens(["table", str(cap), "--limit", "0"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len([line for line in out if "pkg/mod.py:" in line]) == 120
    assert "more rows" not in "\n".join(out)
    assert memlens(["table", str(cap), "--json"]) == 0  # JSON: every row unless --limit
    assert len(json.loads(capsys.readouterr().out)) == 121


@pytest.mark.parametrize("columns", ["60", "100", "200"])
def test_tree_and_table_lines_fit_the_width(
    columns: str, tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", columns)
    cap = many_lines_capture(tmp_path)
    for command in ("tree", "table", "summary", "stats"):
        assert memlens([command, str(cap)]) == 0
        out = capsys.readouterr().out
        widest = max(len(line) for line in out.splitlines())
        assert widest <= int(columns), (command, widest)
    assert memlens(["tree", str(cap), "--limit", "1"]) == 0
    tree_lines = capsys.readouterr().out.splitlines()
    assert len(tree_lines) == 3 + 31  # title, header, rule; <module> and 30 frames
    if columns != "200":
        assert tree_lines[-1].endswith("…")  # cut at the width, never wrapped


def test_summary_show_imports(cap: Path, capsys) -> None:
    assert memlens(["summary", str(cap)]) == 0
    out = capsys.readouterr().out
    assert re.search(
        r"4\s+512\.0 KiB\s+5\.3%\s+/app/main\.py:10\s+<module> \(imports: 512\.0 KiB\)", out
    )
    assert "_find_and_load" not in out
    assert memlens(["summary", str(cap), "--show-imports"]) == 0
    out = capsys.readouterr().out
    assert re.search(
        r"4\s+512\.0 KiB\s+5\.3%\s+<frozen importlib\._bootstrap>:1178\s+_find_and_load", out
    )


def test_a_derived_measure_reaches_every_command(cap: Path, capsys, tmp_path: Path) -> None:
    """`freed` (allocated - leaked) is one entry of measures.MEASURES: a flag of every command
    that takes a measure, and the flame graph's data."""
    mib = 2**20
    assert memlens(["table", str(cap), "--freed", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    # json's 1 MiB leaked is never freed: its line is left out; the orphan 4 KiB was freed
    assert [(r["line"], r["bytes"], r["count"]) for r in rows] == [
        (20, 74 * mib, 4),
        (5, 2 * mib, 2),
        (1178, 768 * 1024, 7),
        (0, 4096, 1),
    ]
    assert memlens(["tree", str(cap), "--freed", "--json"]) == 0
    (main, orphan) = json.loads(capsys.readouterr().out)
    assert (main["inclusive"], main["self"], orphan["inclusive"]) == (
        76 * mib + 768 * 1024,
        0,
        4096,
    )
    page = tmp_path / "freed.html"
    assert memlens(["flamegraph", str(cap), "--freed", "-o", str(page)]) == 0
    assert capsys.readouterr().out == f"wrote {page}\n"
    html = page.read_text()
    assert "memory allocated and freed before the end" in html
    assert '"metric":"freed_bytes"' in html and '"count_metric":"freed_count"' in html
    with pytest.raises(SystemExit):  # argparse's --help
        memlens(["table", "--help"])
    shown = capsys.readouterr().out
    assert "--freed        rows of memory allocated and freed before tracking stopped" in shown
