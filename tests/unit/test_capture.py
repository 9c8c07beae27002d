"""capture.py: the launcher's frames are not the user's, foreign files are named as such, and
every inconsistency the reader checks is refused with its own one-line message."""

from __future__ import annotations

import copy
import json
import sys
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import capture_writer
import msgpack
import pytest

from memlens import capture

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "reports"))
from synthetic import build, example, values, with_referenced  # noqa: E402

RUNPY = ("_run_code", "<frozen runpy>", 88, 80)
MAIN = ("<module>", "/venv/lib/python3.11/site-packages/memlens/__main__.py", 3, 1)
CLI = ("main", "/venv/lib/python3.11/site-packages/memlens/cli/__init__.py", 51, 40)
RUN = ("execute", "/venv/lib/python3.11/site-packages/memlens/cli/run.py", 235, 200)
SCRIPT = ("<module>", "/home/me/app.py", 7, 1)
WORK = ("work", "/home/me/app.py", 3, 2)
USER_RUNPY = ("run_path", "/usr/lib/python3.11/runpy.py", 291, 260)


def test_launcher_frames_at_the_root_are_dropped() -> None:
    profile = build(
        [
            ([RUNPY, MAIN, CLI, RUN, SCRIPT, WORK], values(peak=10 << 20)),
            ([RUNPY, MAIN, CLI, RUN], values(peak=100)),  # the launcher's own allocation
        ]
    )
    stacks = {s.stack_id: s for s in profile.top_stacks("peak_bytes", None)}
    frames = [[f.function for f in s.frames] for s in stacks.values() if s.stack_id >= 0]
    assert frames == [["<module>", "work"]]
    assert stacks[-1].usage.peak_bytes == 100
    assert profile.lines.line("/home/me/app.py", 3).inclusive.peak_bytes == 10 << 20
    assert profile.lines.line("/venv/lib/python3.11/site-packages/memlens/cli/run.py", 235) is None


def test_launcher_frames_deeper_in_user_code_are_kept() -> None:
    profile = build([([SCRIPT, USER_RUNPY, WORK], values(peak=5))])
    (stack,) = profile.top_stacks("peak_bytes", None)
    assert [f.function for f in stack.frames] == ["<module>", "run_path", "work"]


def test_json_file_is_not_a_capture(tmp_path: Path) -> None:
    path = tmp_path / "x.msgpack"
    path.write_text(json.dumps({"magic": "nope"}))
    with pytest.raises(capture.CaptureError, match="not a memlens capture"):
        capture.load(path)


def _set(path: str, value: object) -> Callable[[dict[str, Any]], None]:
    """An edit of the capture map at `table.key`, `table.key[index]` or `key[index]`."""
    keys: list[Any] = path.replace("[", ".").replace("]", "").split(".")

    def edit(raw: dict[str, Any]) -> None:
        target = raw
        for key in keys[:-1]:
            target = target[int(key) if key.isdigit() else key]
        last = keys[-1]
        target[int(last) if last.isdigit() else last] = value

    return edit


def _overflow(raw: dict[str, Any]) -> None:
    raw["stats"]["alloc_bytes"] = [2**62] * len(raw["stats"]["stack"])
    raw["totals"]["alloc_bytes"] = 2**63 - 1


# example(): a 2 s run (the reader allows 2,003,000,000 ns with clock slack), peak 9,965,568 B
@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (_set("stats.alloc_count[0]", True), "'stats.alloc_count' is not a list of integers"),
        (_set("frames.line", 5), "'frames.line' is not a list of integers"),
        (_set("frames.file[1]", 2**63), "'frames.file' has an integer out of range"),
        (_set("strings[0]", b"/app/main.py"), "'strings' is not a list of strings"),
        (_set("stacks.parent[0]", 0), "'stacks.parent' must refer to an earlier node or be -1"),
        (_set("stacks.frame[2]", 99), "'stacks.frame' refers outside [0, 5)"),
        (_set("frames.line[0]", 2**40), "'frames.line' has a value outside [0, 1000000]"),
        (_overflow, "'stats.alloc_bytes' adds up to more than 64 bits hold"),
        (
            _set("totals.peak_ns", 3 * 10**9),
            "'totals.peak_ns' is 3000000000, outside [0, 2003000000]",
        ),
        (_set("totals.peak_bytes", -1), f"'totals.peak_bytes' is -1, outside [0, {2**63 - 1}]"),
        (
            _set("totals.alloc_bytes", 9_965_567),
            "'totals.peak_bytes' exceeds 'totals.alloc_bytes'",
        ),
        (
            _set("totals.peak_bytes", 9_965_567),
            "'stats.peak_bytes' adds up to more than 'totals.peak_bytes'",
        ),
        (_set("stats.leak_bytes[0]", 11 << 20), "'stats.leak_bytes' exceeds 'stats.alloc_bytes'"),
        (_set("stats.peak_bytes[0]", 11 << 20), "'stats.peak_bytes' exceeds 'stats.alloc_bytes'"),
        (_set("stats.thread[0]", 9), "'stats.thread' refers to a thread not in 'threads'"),
        (_set("threads.id", [1, 1]), "'threads.id' names a thread twice"),
        (_set("stats.domain[0]", 3), "'stats.domain' refers outside [0, 3)"),
        (
            _set("meta.end_ns", 1_699_999_999_999_999_999),
            f"'meta.end_ns' is 1699999999999999999, outside [1700000000000000000, {2**63 - 1}]",
        ),
        (_set("timeline.t_ms[2]", 2004), "'timeline.t_ms' has a value outside [0, 2003]"),
        (_set("timeline.t_ms[0]", 600), "'timeline.t_ms' goes back in time"),
        (
            _set("timeline.heap[1]", 9_965_569),
            "'timeline.heap' has a value outside [0, 9965568]",
        ),
        (_set("meta.python_allocators", "yes"), "'meta.python_allocators' is not a boolean"),
    ],
)
def test_inconsistent_captures_are_refused(
    edit: Callable[[dict[str, Any]], None], message: str
) -> None:
    raw = capture_writer.to_dict(example())
    capture.from_dict(copy.deepcopy(raw))  # valid before the edit
    edit(raw)
    with pytest.raises(capture.CaptureError) as caught:
        capture.loads(msgpack.packb(raw), source="x.msgpack")
    assert str(caught.value) == f"x.msgpack: corrupt capture: {message}"


def _referenced(edit: Callable[[dict[str, Any]], None]) -> Callable[[dict[str, Any]], None]:
    """An edit of the exit snapshot's `referenced` map."""
    return lambda raw: edit(raw["snapshots"][0]["referenced"])


# with_referenced(example()): 6 stats rows, row 2 leaks 1 MiB in 100 blocks, 768 KiB referenced
@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (_referenced(_set("row[0]", 6)), "'snapshots.referenced.row' refers outside [0, 6)"),
        (_referenced(_set("row[0]", -1)), "'snapshots.referenced.row' refers outside [0, 6)"),
        (
            _referenced(lambda r: r.update(row=[2, 2], count=[1, 1], bytes=[1, 1])),
            "'snapshots.referenced.row' is not increasing (a row twice?)",
        ),
        (
            _referenced(_set("bytes[0]", 2**20 + 1)),
            "'snapshots.referenced' exceeds its row's leak_count or leak_bytes",
        ),
        (
            _referenced(_set("count[0]", 101)),
            "'snapshots.referenced' exceeds its row's leak_count or leak_bytes",
        ),
        (
            _referenced(_set("count[0]", -1)),
            f"'snapshots.referenced' has a value outside [0, {2**63 - 1}]",
        ),
        (
            _referenced(_set("bytes[0]", 1.5)),
            "'snapshots.referenced.bytes' is not a list of integers",
        ),
        (
            _referenced(_set("count", [1, 1])),
            "'snapshots.referenced.count' has 2 entries, expected 1",
        ),
        (_referenced(_set("complete", "yes")), "'snapshots.referenced.complete' is not a boolean"),
        (_set("snapshots[0].referenced", [2]), "missing or malformed 'referenced'"),
    ],
)
def test_inconsistent_referenced_rows_are_refused(
    edit: Callable[[dict[str, Any]], None], message: str
) -> None:
    raw = capture_writer.to_dict(with_referenced(example(), 768 * 1024))
    assert raw["snapshots"][0]["referenced"] == {
        "complete": True,
        "row": [2],
        "count": [1],
        "bytes": [768 * 1024],
    }
    edit(raw)
    with pytest.raises(capture.CaptureError) as caught:
        capture.loads(msgpack.packb(raw), source="x.msgpack")
    assert str(caught.value) == f"x.msgpack: corrupt capture: {message}"


def test_referenced_rows_round_trip_into_the_ref_columns() -> None:
    profile = with_referenced(example(), 768 * 1024, complete=False)
    again = capture.loads(capture_writer.dumps(profile))
    assert again.referenced_at_exit is False
    assert (again.stats.values == profile.stats.values).all()
    assert again.stats.values[:, -2:].sum(axis=0).tolist() == [1, 768 * 1024]
    assert example().referenced_at_exit is None


def test_undecodable_captures_are_refused() -> None:
    data = msgpack.packb(capture_writer.to_dict(example()))
    cases = [
        (b"", "empty file, not a memlens capture"),
        (data[:-1], "truncated or corrupt capture"),
        (data + b"\x00", "trailing bytes after the capture (corrupt file)"),
        (b"\x91" * 5000 + b"\xc0", "not a memlens capture: nested too deeply"),
        # a map whose first key is a list: msgpack's strict_map_key refuses it
        (b"\x82\x91\xa1x\x01" + data[1:], "corrupt capture: a map key is not a string"),
        (data[:1] + b"\xdd\xff\xff\xff\xff", "not a memlens capture"),
    ]
    for bad, message in cases:
        with pytest.raises(capture.CaptureError) as caught:
            capture.loads(bad, source="x.msgpack")
        assert str(caught.value) == f"x.msgpack: {message}", bad[:20]


def compressed(body: bytes) -> bytes:
    return capture.COMPRESSED_PREFIX + zlib.compress(body, 1)


def test_a_compressed_capture_reads_as_its_bare_body() -> None:
    body = msgpack.packb(capture_writer.to_dict(example()))
    assert len(compressed(body)) < len(body)
    assert capture_writer.to_dict(capture.loads(compressed(body))) == capture_writer.to_dict(
        example()
    )
    assert capture.body(compressed(body)) == body
    assert capture.body(body) is body  # a bare body (older captures, `dumps`) as it is


def test_undecodable_compressed_captures_are_refused() -> None:
    body = msgpack.packb(capture_writer.to_dict(example()))
    stream = zlib.compress(body, 1)
    prefix = capture.COMPRESSED_PREFIX
    cases = [
        (prefix, "truncated or corrupt capture"),
        (prefix + stream[:-1], "truncated or corrupt capture"),
        (prefix + stream + b"\x00", "trailing bytes after the capture (corrupt file)"),
        (prefix + b"not zlib at all", "corrupt capture: its compressed body does not inflate"),
        # a flipped byte in the last four (the Adler-32 checksum) is caught by zlib
        (
            prefix + stream[:-1] + bytes([stream[-1] ^ 1]),
            "corrupt capture: its compressed body does not inflate",
        ),
        (compressed(body[:-1]), "truncated or corrupt capture"),
        (compressed(b""), "not a memlens capture"),
    ]
    for bad, message in cases:
        with pytest.raises(capture.CaptureError) as caught:
            capture.loads(bad, source="x.msgpack")
        assert str(caught.value) == f"x.msgpack: {message}", bad[:30]


def test_a_compression_bomb_stops_at_the_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    """2 MiB of zeros compress to 9 KiB; with the cap at 1 MiB, inflating stops past it."""
    monkeypatch.setattr(capture, "MAX_CAPTURE_BYTES", 1 << 20)
    bomb = compressed(bytes(2 << 20))
    assert len(bomb) < 10_000
    with pytest.raises(capture.CaptureError) as caught:
        capture.loads(bomb, source="x.msgpack")
    assert str(caught.value) == (
        f"x.msgpack: inflates to more than {1 << 20} bytes, too large for a memlens capture"
    )
    # exactly at the cap it inflates, and the msgpack reader then judges it
    with pytest.raises(capture.CaptureError) as caught:
        capture.loads(compressed(bytes(1 << 20)), source="x.msgpack")
    assert str(caught.value) == "x.msgpack: not a memlens capture"


def as_version_2(raw: dict[str, Any]) -> dict[str, Any]:
    """A version-1 map (to_dict's) with version 2's delta and gap columns, as the tracker writes."""
    raw = copy.deepcopy(raw)
    raw["version"] = 2
    for table, key in capture.DELTA_COLUMNS:
        column = raw[table][key]
        raw[table][key] = [v - p for v, p in zip(column, [0, *column[:-1]], strict=True)]
    parent = raw["stacks"]["parent"]
    raw["stacks"]["parent"] = [node - p for node, p in enumerate(parent)]
    return raw


def test_version_2_columns_read_as_version_1() -> None:
    plain = capture_writer.to_dict(example())
    assert plain["version"] == 1
    v2 = as_version_2(plain)
    # the example's trie: a root, its child, that child's child (gaps 1, 1, 1 after the root's 1)
    assert plain["stacks"]["parent"][:3] == [-1, 0, 1] and v2["stacks"]["parent"][:3] == [1, 1, 1]
    assert capture_writer.to_dict(capture.loads(msgpack.packb(v2))) == plain
    # a gap past the first node: parent -2, refused as in version 1
    v2["stacks"]["parent"][0] = 2
    with pytest.raises(capture.CaptureError) as caught:
        capture.loads(msgpack.packb(v2), source="x.msgpack")
    assert "x.msgpack: corrupt capture: " in str(caught.value)
