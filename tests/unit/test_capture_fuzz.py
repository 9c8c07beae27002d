"""capture.py against hostile captures: mutants of valid captures (one made by the real tracker,
two by the synthetic builder) are either refused with one line, or read into a Profile whose
numbers are all possible and on which every report builds.

- test_generated_mutants: 2,400 deterministic mutants, in process, through every report builder;
  mutants that break an invariant on purpose (a reference out of range, a cycle, a negative or
  overflowing number, a list key, bytes for a string, a time after the run, a bad object
  snapshot) must be refused. The synthetic deep seed carries an object snapshot.
- test_every_prefix_is_refused: each seed cut at every length.
- test_hypothesis_mutants: the same kinds of mutation, values and positions chosen by hypothesis.
- a few mutants and the special files (FIFO, /dev/zero, /dev/urandom, a directory, a missing and
  an unreadable file) through the real `memlens` command: exit status 2, one line, no hang.
"""

from __future__ import annotations

import contextlib
import copy
import itertools
import os
import random
import resource
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import capture_writer
import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from memlens import capture, measures
from memlens.measures import STATS_COLUMNS
from memlens.model import Profile
from memlens.reports import flamegraph, json_report, lines, stats, summary, table, tree
from memlens.snapshots import ROOTS, Holder, HolderStep, ObjectGroup, Snapshot

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "reports"))
from synthetic import build, example, values  # noqa: E402

SOURCE = "mutant.msgpack"
INT64_MAX = 2**63 - 1
REPORT_COMMANDS = ("summary", "table", "tree", "stats", "json", "flamegraph")

# A program with a few functions, a thread and a leak: the real tracker's capture of it is one
# of the seeds (made once per session).
SCRIPT = """\
import threading

def build(n):
    return [bytearray(1000) for _ in range(n)]

def work():
    keep.append(build(50))

keep = [build(100)]
thread = threading.Thread(target=work, name="worker")
thread.start()
thread.join()
scratch = build(200)
del scratch
"""


# --- seeds ------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def seeds(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    """Valid capture maps: the real tracker's, and two synthetic ones."""
    folder = tmp_path_factory.mktemp("fuzz-seed")
    script = folder / "seed.py"
    script.write_text(SCRIPT)
    output = folder / "seed.msgpack"
    run = memlens("run", "-o", str(output), str(script), timeout=120)
    assert run.returncode == 0, run.stderr
    data = output.read_bytes()
    assert data.startswith(capture.COMPRESSED_PREFIX)  # as the tracker writes
    # the mutations judge version 1's plain columns (a parent's meaning is what they break)
    real = plain_columns(msgpack.unpackb(capture.body(data)))
    assert capture_writer.to_dict(capture.loads(msgpack.packb(real))) == capture_writer.to_dict(
        capture.loads(data)
    )
    maps = [
        real,
        capture_writer.to_dict(example()),
        capture_writer.to_dict(with_snapshots(deep_and_recursive())),
    ]
    for raw in maps:  # each seed is valid as it is
        capture.loads(msgpack.packb(raw))
    return maps


def plain_columns(raw: dict[str, Any]) -> dict[str, Any]:
    """A version-2 map (the tracker's) as version 1: deltas summed, parents as indices."""
    assert raw["version"] == 2
    raw["version"] = 1
    for name, key in capture.DELTA_COLUMNS:
        raw[name][key] = list(itertools.accumulate(raw[name][key]))
    raw["stacks"]["parent"] = [node - gap for node, gap in enumerate(raw["stacks"]["parent"])]
    return raw


def deep_and_recursive() -> Profile:
    """Stacks 1 to 40 frames deep, a recursion, three threads, every domain."""
    chain = [(f"step{i}", f"/app/mod{i % 4}.py", 10 + i, 9 + i) for i in range(40)]
    recursion = [chain[0], *[("walk", "/app/tree.py", 7, 5)] * 12]
    allocations = [
        (chain[:depth], values(peak=depth * 64, alloc=depth * 640, count=depth, leak=depth))
        for depth in range(1, 41, 3)
    ]
    allocations.append((recursion, values(peak=4096, alloc=8192, count=3, temp=2048)))
    return build(
        allocations,
        rows=[
            (chain[:5], thread, domain, values(peak=100, count=2))
            for thread, domain in ((2, 1), (3, 2), (2, 2))
        ]
        + [([], 3, 1, values(peak=8, count=1))],
        threads={1: "MainThread", 2: "worker", 3: "native"},
    )


# --- mutations --------------------------------------------------------------------------------


class Pairs(list[tuple[Any, Any]]):
    """A msgpack map given as key/value pairs, so that a key can be a list or a map."""


def with_snapshots(profile: Profile) -> Profile:
    """The profile with an object snapshot (memlens.snapshots) referring to its stacks."""
    last = len(profile.stack_parent) - 1
    holder = Holder(
        "bytearray",
        0,
        10,
        10_570,
        "class",
        (HolderStep("Cache.entries (dict, 10 items)", last), HolderStep("class Cache", -1)),
    )
    objects = (ObjectGroup("bytearray", 0, 10, 10_570), ObjectGroup("str", last, 3, 150))
    profile.snapshots = (Snapshot("mid", 0, objects, (holder,), True),)
    return profile


def pack(value: Any) -> bytes:
    if isinstance(value, Pairs | dict):
        items = value if isinstance(value, Pairs) else list(value.items())
        packer = msgpack.Packer()
        return packer.pack_map_header(len(items)) + b"".join(pack(k) + pack(v) for k, v in items)
    return msgpack.packb(value)


def compressed(body: bytes) -> bytes:
    """A body as the tracker writes it to a file: the prefix, then one zlib stream."""
    return capture.COMPRESSED_PREFIX + zlib.compress(body, 1)


def deep(levels: int) -> bytes:
    """`levels` nested one-element arrays around nil (msgpack refuses to pack it itself)."""
    return b"\x91" * levels + b"\xc0"


# Values of the wrong type or out of every range a capture uses.
HOSTILE: list[Any] = [
    None,
    True,
    1.5,
    float("nan"),
    "7",
    b"\x00\x01",
    [],
    [1, "x"],
    [[1]],
    {},
    {"k": 1},
    -1,
    -(2**63),
    2**40,
    2**63 - 1,
    2**63,
    2**64 - 1,
    msgpack.ExtType(5, b"x"),
]
NAMES = [
    "/dev/zero",
    "/dev/urandom",
    "a\x00b.py",
    "/nonexistent/b.py",
    "\x1b[2J\x07",
    "",
    "x" * 5000,
]


OPTIONAL_TABLES = ("sizes", "allocators")  # the tracker's captures have them, older ones not


def columns(raw: dict[str, Any]) -> list[tuple[str, str]]:
    """(table, column) of every list-of-int column."""
    return [
        (name, key)
        for name in ("frames", "stacks", "stats", "timeline", "threads", *OPTIONAL_TABLES)
        for key, value in raw.get(name, {}).items()
        if isinstance(value, list)
    ]


def slots(raw: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Paths to every value: map keys, and the first, a middle and the last item of lists."""
    found = [path] if path else []
    if isinstance(raw, dict):
        for key, value in raw.items():
            found += slots(value, (*path, key))
    elif isinstance(raw, list) and raw:
        for index in sorted({0, len(raw) // 2, len(raw) - 1}):
            found += slots(raw[index], (*path, index))
    return found


def put(raw: Any, path: tuple[Any, ...], value: Any) -> None:
    for key in path[:-1]:
        raw = raw[key]
    raw[path[-1]] = value


Mutation = Callable[[dict[str, Any], random.Random], bool]  # edits raw; True: must be refused


def replace_any(raw: dict[str, Any], rng: random.Random) -> bool:
    put(raw, rng.choice(slots(raw)), rng.choice(HOSTILE))
    return False  # a hostile value may happen to be valid where it lands (0 for a count)


def drop_key(raw: dict[str, Any], rng: random.Random) -> bool:
    tables = [raw] + [v for v in raw.values() if isinstance(v, dict)]
    table = rng.choice([t for t in tables if t])
    del table[rng.choice(sorted(table))]
    return False  # meta's keys are optional


def wrong_length(raw: dict[str, Any], rng: random.Random) -> bool:
    name, key = rng.choice([c for c in columns(raw) if len(raw[c[0]]) > 1])
    column = raw[name][key]
    raw[name][key] = column[:-1] if column and rng.random() < 0.5 else [*column, 0]
    return True


def bad_reference(raw: dict[str, Any], rng: random.Random) -> bool:
    n_strings, n_frames = len(raw["strings"]), len(raw["frames"]["line"])
    n_nodes = len(raw["stacks"]["parent"])
    choices = [
        ("frames", "function", [n_strings, -1]),
        ("frames", "file", [n_strings, -1]),
        ("stacks", "frame", [n_frames, -1]),
        ("stats", "stack", [n_nodes, -2]),
        ("stats", "domain", [3, -1]),
        ("stats", "thread", [max(raw["threads"]["id"], default=0) + 1, -1]),
        ("threads", "name", [n_strings, -1]),
        ("sizes", "domain", [3, -1]),
        ("sizes", "bucket_log2", [64, -2]),
        ("allocators", "name", [n_strings, -1]),
    ]
    name, key, bad = rng.choice([c for c in choices if raw.get(c[0], {}).get(c[1])])
    column = raw[name][key]
    column[rng.randrange(len(column))] = rng.choice(bad)
    return True


def stack_cycle(raw: dict[str, Any], rng: random.Random) -> bool:
    parent = raw["stacks"]["parent"]
    node = rng.randrange(len(parent))
    # itself, a later node (a cycle once that node points back), or below -1
    parent[node] = rng.choice([node, rng.randrange(node, len(parent)), -2])
    if parent[node] > node:
        parent[parent[node]] = node
    return True


def negative_or_huge(raw: dict[str, Any], rng: random.Random) -> bool:
    targets = [("stats", m) for m in STATS_COLUMNS if raw["stats"][m]]
    targets += [("timeline", k) for k in ("t_ms", "heap", "rss") if raw["timeline"][k]]
    targets += [("frames", k) for k in ("line", "first_line") if raw["frames"][k]]
    targets += [
        (name, k)
        for name in OPTIONAL_TABLES
        for k in ("count", "bytes")
        if raw.get(name, {}).get(k)
    ]
    name, key = rng.choice(targets)
    column = raw[name][key]
    bad = [-1, -(2**63), 2**63, 2**64 - 1] + (
        [2**40, capture.MAX_LINE + 1] if name == "frames" else []
    )
    column[rng.randrange(len(column))] = rng.choice(bad)
    return True


def bad_total(raw: dict[str, Any], rng: random.Random) -> bool:
    totals = raw["totals"]
    key = rng.choice(sorted(totals))
    if key == "peak_ns":
        totals[key] = rng.choice([-1, raw["meta"]["end_ns"] - raw["meta"]["start_ns"] + 10**9])
    elif key in ("alloc_count", "alloc_bytes", "peak_bytes", "leak_bytes") and totals[key] > 0:
        totals[key] = rng.choice([-1, totals[key] - 1, 2**64 - 1])  # below the rows' sum
    else:
        totals[key] = rng.choice([-1, 2**63, 2**64 - 1])
    return True


def overflowing_sum(raw: dict[str, Any], rng: random.Random) -> bool:
    stats_table = raw["stats"]
    n_rows = len(stats_table["stack"])
    if n_rows < 2:
        return wrong_length(raw, rng)
    # every row's value fits in int64, their sum does not: it would wrap to a negative total
    for metric in ("alloc_bytes", rng.choice(["peak_bytes", "leak_bytes", "temp_bytes"])):
        stats_table[metric] = [2**62] * n_rows
    raw["totals"].update(alloc_bytes=INT64_MAX, peak_bytes=INT64_MAX, leak_bytes=0)
    return True


def part_above_whole(raw: dict[str, Any], rng: random.Random) -> bool:
    if rng.random() < 0.5:  # a peak above everything allocated
        raw["totals"]["peak_bytes"] = raw["totals"]["alloc_bytes"] + 1
    else:
        stats_table = raw["stats"]
        row = rng.randrange(len(stats_table["stack"]))
        part, whole = rng.choice(
            [
                (f"{kind}_{unit}", f"alloc_{unit}")
                for kind in ("peak", "leak", "temp")
                for unit in ("count", "bytes")
            ]
        )
        stats_table[part][row] = stats_table[whole][row] + 1
    return True


def outside_the_run(raw: dict[str, Any], rng: random.Random) -> bool:
    meta = raw["meta"]
    duration_ms = (meta["end_ns"] - meta["start_ns"]) // 10**6
    kind = rng.randrange(3)
    if kind == 0:
        meta["end_ns"] = meta["start_ns"] - 1
    elif kind == 1 and raw["timeline"]["t_ms"]:
        raw["timeline"]["t_ms"][-1] = duration_ms + 2000
    else:
        raw["totals"]["peak_ns"] = (duration_ms + 2000) * 10**6
    return True


def bytes_for_str(raw: dict[str, Any], rng: random.Random) -> bool:
    where = rng.choice(["strings", "argv", "python_version"])
    if where == "strings":
        strings = raw["strings"]
        strings[rng.randrange(len(strings))] = b"/app/main.py"
    elif where == "argv":
        raw["meta"]["argv"] = [b"prog.py"]
    else:
        raw["meta"]["python_version"] = b"3.11"
    return True


def odd_name(raw: dict[str, Any], rng: random.Random) -> bool:
    strings = raw["strings"]
    strings[rng.randrange(len(strings))] = rng.choice(NAMES)
    return False  # any str is a name; the reports must cope with it


def bad_snapshot(raw: dict[str, Any], rng: random.Random) -> bool:
    """A snapshot (made if the seed has none) with a reference, number or root out of range."""
    n_nodes, n_strings = len(raw["stacks"]["parent"]), len(raw["strings"])
    snapshots = raw.setdefault("snapshots", [])
    if not snapshots:
        empty: dict[str, list[int]] = {"type": [], "stack": [], "count": [], "bytes": []}
        snapshots.append({"label": "x", "t_ms": 0, "complete": True, "objects": empty})
        snapshots[0]["holders"] = []
    snapshot = snapshots[rng.randrange(len(snapshots))]
    objects = snapshot["objects"]
    if not objects["type"]:
        for key, value in (("type", 0), ("stack", -1), ("count", 1), ("bytes", 1)):
            objects[key].append(value)
    holder = {"type": 0, "stack": -1, "count": 1, "bytes": 1, "root": "module", "steps": []}
    edits = [
        ("objects", "type", [n_strings, -1]),
        ("objects", "stack", [n_nodes, -2]),
        ("objects", "count", [-1, 2**63]),
        ("t_ms", None, [-1, 2**40]),
        ("holders", "stack", [n_nodes, -2]),
        ("holders", "root", ["everywhere", 1]),
    ]
    where, key, bad = rng.choice(edits)
    if where == "objects":
        objects[key][0] = rng.choice(bad)
    elif where == "t_ms":
        snapshot["t_ms"] = rng.choice(bad)
    else:
        snapshot["holders"] = [{**holder, key: rng.choice(bad)}]
    return True


def bad_referenced(raw: dict[str, Any], rng: random.Random) -> bool:
    """The exit snapshot's `referenced` (added to a snapshot if no seed snapshot has it): a row
    out of range or twice, more than the row's leak, a negative or non-integer number, a
    non-boolean `complete`, or not a map."""
    n_rows = len(raw["stats"]["stack"])
    leaking = [i for i in range(n_rows) if raw["stats"]["leak_count"][i] > 0]
    if not leaking:
        return False
    exit_snapshot = {"label": "exit", "t_ms": 0, "complete": True, "holders": []}
    empty: dict[str, list[int]] = {"type": [], "stack": [], "count": [], "bytes": []}
    snapshots = raw.setdefault("snapshots", [])
    marked = [s for s in snapshots if "referenced" in s]
    if not marked:
        snapshots.append({**exit_snapshot, "objects": empty})
        row = leaking[0]
        leak = (raw["stats"]["leak_count"][row], raw["stats"]["leak_bytes"][row])
        snapshots[-1]["referenced"] = {
            "complete": True,
            "row": [row],
            "count": [leak[0]],
            "bytes": [leak[1]],
        }
        marked = [snapshots[-1]]
    referenced = marked[-1]["referenced"]
    first = referenced["row"][0] if referenced["row"] else leaking[0]
    over = raw["stats"]["leak_bytes"][first] + 1
    edit = rng.choice(["row_out", "row_twice", "above_leak", "negative", "kind", "flag", "map"])
    if edit == "map":
        marked[-1]["referenced"] = rng.choice([[], "all", 1])
        return True
    referenced.update({"row": [first], "count": [0], "bytes": [0]})
    if edit == "row_out":
        referenced["row"] = [rng.choice([n_rows, -1, 2**63])]
    elif edit == "row_twice":
        referenced.update({"row": [first, first], "count": [0, 0], "bytes": [0, 0]})
    elif edit == "above_leak":
        referenced["bytes"] = [over]
    elif edit == "negative":
        referenced[rng.choice(["count", "bytes"])] = [-1]
    elif edit == "kind":
        referenced[rng.choice(["count", "bytes", "row"])] = [1.5]
    else:
        referenced["complete"] = rng.choice([1, None, "yes"])
    return True


MUTATIONS: dict[str, Mutation] = {
    f.__name__: f
    for f in (
        replace_any,
        drop_key,
        wrong_length,
        bad_reference,
        stack_cycle,
        negative_or_huge,
        bad_total,
        overflowing_sum,
        part_above_whole,
        outside_the_run,
        bytes_for_str,
        odd_name,
        bad_snapshot,
        bad_referenced,
    )
}


def mutate_map(seed: dict[str, Any], name: str, rng: random.Random) -> tuple[bytes, bool]:
    raw = copy.deepcopy(seed)
    must_refuse = MUTATIONS[name](raw, rng)
    return pack(raw), must_refuse


def hostile_key(seed: dict[str, Any], rng: random.Random) -> bytes:
    """A map (the top one or a table) with a list or map as one of its keys."""
    raw = copy.deepcopy(seed)
    table = rng.choice(["", "frames", "stacks", "stats", "totals", "meta"])
    key = rng.choice([["line"], Pairs([("a", 1)]), [], 7, None])
    target = Pairs(raw.items()) if not table else Pairs(raw[table].items())
    target.insert(rng.randrange(len(target) + 1), (key, 1))
    if not table:
        return pack(target)
    raw[table] = target
    return pack(raw)


def mutate_bytes(data: bytes, rng: random.Random) -> bytes:
    kind = rng.randrange(6)
    if kind == 0:  # a prefix: every small length, then one per eighth of the file
        cut = rng.choice([*range(17), *(len(data) * k // 8 for k in range(1, 8)), len(data) - 1])
        return data[:cut]
    if kind == 1:  # a few bytes overwritten
        out = bytearray(data)
        for _ in range(rng.randint(1, 8)):
            out[rng.randrange(len(out))] = rng.choice(
                [0xC1, 0xFF, 0xDD, 0xDF, 0x00, rng.randrange(256)]
            )
        return bytes(out)
    if kind == 2:  # trailing bytes
        return data + rng.choice([b"\x00", b"\xc0" * 9, data[:40]])
    if kind == 3:  # a chunk removed or doubled
        start = rng.randrange(len(data))
        end = min(len(data), start + rng.randint(1, 64))
        return data[:start] + (data[start:end] * 2 if rng.random() < 0.5 else b"") + data[end:]
    if kind == 4:  # nested deeper than msgpack's stack (or just within it)
        return deep(rng.choice([100, 1000, 5000]))
    return rng.randbytes(rng.randint(1, 300))


def generate(seeds: list[dict[str, Any]], index: int) -> tuple[str, bytes, bool]:
    """Mutant number `index`: (what was done, the bytes, whether it must be refused)."""
    rng = random.Random(index)
    seed = seeds[index % len(seeds)]
    choice = index % 16
    if choice < len(MUTATIONS):
        name = list(MUTATIONS)[choice]
        data, must_refuse = mutate_map(seed, name, rng)
        # every other one as a compressed file: inflating must not change the verdict
        return name, compressed(data) if index % 32 >= 16 else data, must_refuse
    if choice == 13:
        return "hostile_key", hostile_key(seed, rng), True
    if choice == 15:  # the compressed file itself cut, overwritten, grown or shrunk
        return "compressed bytes", mutate_bytes(compressed(msgpack.packb(seed)), rng), False
    return "bytes", mutate_bytes(msgpack.packb(seed), rng), False


# --- what an accepted profile may show --------------------------------------------------------


def assert_sane(profile: Profile) -> None:
    """Every number a report could show is possible (checked in plain Python, not numpy)."""
    meta, totals = profile.meta, profile.totals
    assert 0 <= meta.start_ns <= meta.end_ns <= INT64_MAX
    run_ns = meta.end_ns - meta.start_ns
    slack = run_ns // 1000 + 10**6
    assert all(isinstance(a, str) for a in meta.argv)
    assert isinstance(meta.python_allocators, bool)
    for key in ("alloc_count", "alloc_bytes", "peak_bytes", "peak_ns", "leak_bytes", "rss_peak"):
        assert 0 <= getattr(totals, key) <= INT64_MAX, key
    assert totals.leak_bytes <= totals.peak_bytes <= totals.alloc_bytes
    assert totals.peak_ns <= run_ns + slack
    rows = profile.stats.values.tolist()
    sums = (
        [sum(column) for column in zip(*rows, strict=True)] if rows else [0] * len(measures.COLUMNS)
    )
    assert all(0 <= value <= INT64_MAX for row in rows for value in row)
    for row in rows:  # peak, leaked, temporary: parts of what was allocated
        by_metric = dict(zip(measures.COLUMNS, row, strict=True))
        for kind in ("peak", "leak", "temp"):
            assert by_metric[f"{kind}_count"] <= by_metric["alloc_count"]
            assert by_metric[f"{kind}_bytes"] <= by_metric["alloc_bytes"]
        assert by_metric["ref_count"] <= by_metric["leak_count"]  # referenced: part of the leak
        assert by_metric["ref_bytes"] <= by_metric["leak_bytes"]
    assert all(total <= INT64_MAX for total in sums)
    for metric in ("alloc_count", "alloc_bytes", "peak_bytes", "leak_bytes"):
        assert sums[measures.COLUMNS.index(metric)] <= getattr(totals, metric), metric
    for frame in profile.frames:
        assert isinstance(frame.function, str) and isinstance(frame.file, str)
        assert 0 <= frame.line <= capture.MAX_LINE and 0 <= frame.first_line <= capture.MAX_LINE
    parents = profile.stack_parent.tolist()
    assert all(-1 <= p < node for node, p in enumerate(parents))
    assert all(0 <= f < len(profile.frames) for f in profile.stack_frame.tolist())
    assert all(-1 <= s < len(parents) for s in profile.stats.stack.tolist())
    assert set(profile.stats.thread.tolist()) <= set(profile.threads)
    assert set(profile.stats.domain.tolist()) <= {0, 1, 2}
    t_ms = profile.timeline.t_ms.tolist()
    assert t_ms == sorted(t_ms) and all(0 <= t * 10**6 <= run_ns + slack for t in t_ms)
    assert all(0 <= h <= totals.peak_bytes for h in profile.timeline.heap.tolist())
    assert all(0 <= r <= totals.rss_peak for r in profile.timeline.rss.tolist())
    assert_sane_sizes(profile)
    for snapshot in profile.snapshots:
        assert 0 <= snapshot.t_ms * 10**6 <= run_ns + slack
        for group in snapshot.objects:
            assert isinstance(group.type, str) and -1 <= group.stack < len(parents)
            assert 0 <= group.count <= INT64_MAX and 0 <= group.bytes <= INT64_MAX
        for holder in snapshot.holders:
            assert holder.root in ROOTS and -1 <= holder.stack < len(parents)
            assert all(-1 <= step.stack < len(parents) for step in holder.steps)


def assert_sane_sizes(profile: Profile) -> None:
    """The exact histogram and the allocators: buckets that hold their bytes, within the totals."""
    totals = profile.totals
    if profile.sizes is not None:
        sizes = profile.sizes
        entries = list(
            zip(
                sizes.domain.tolist(),
                sizes.bucket_log2.tolist(),
                sizes.count.tolist(),
                sizes.bytes.tolist(),
                strict=True,
            )
        )
        assert len({(d, k) for d, k, _, _ in entries}) == len(entries)
        for d, k, n, b in entries:
            assert d in (0, 1, 2) and -1 <= k <= 63 and n >= 0
            assert (b == 0) if k < 0 else (n << k <= b <= n * ((2 << k) - 1))
        assert sum(n for _, _, n, _ in entries) <= totals.alloc_count
        assert sum(b for _, _, _, b in entries) <= totals.alloc_bytes
    if profile.allocators is not None:
        names = [a.name for a in profile.allocators]
        assert len(set(names)) == len(names) and all(isinstance(n, str) for n in names)
        assert all(a.count >= 0 and a.bytes >= 0 for a in profile.allocators)
        assert sum(a.count for a in profile.allocators) <= totals.alloc_count
        assert sum(a.bytes for a in profile.allocators) <= totals.alloc_bytes


def numbers(value: Any, key: str = "") -> list[tuple[str, float]]:
    if isinstance(value, dict):
        return [n for k, v in value.items() for n in numbers(v, k)]
    if isinstance(value, list):
        return [n for v in value for n in numbers(v, key)]
    if isinstance(value, int | float) and not isinstance(value, bool):
        return [(key, value)]
    return []


# JSON fields that may be negative: an exit status (minus a signal), a flame graph root's parent
SIGNED = {"exit_code", "parent"}


def assert_reports_build(profile: Profile, render: bool) -> None:
    """Every report builds, and what they show is in range: no negative number, no share
    outside 0..1. With `render`, the text and HTML too (slower: kept to some mutants)."""
    shown = [
        *numbers(json_report.build(profile)),
        *numbers(stats.build(profile)),
        *numbers(summary.build(profile)),
    ]
    for metric in ("peak_bytes", "alloc_bytes", "leak_bytes"):
        shown += numbers(flamegraph.data(profile, metric))
    for kind in measures.BY_NAME:
        shown += [("share", row.share) for row in table.build(profile, kind)]
        shown += [("bytes", row.bytes) for row in table.build(profile, kind)]
    for metric in ("peak_bytes", "alloc_bytes"):
        shown += [("inclusive", node.inclusive) for node in tree.build(profile, metric)]
    for file in profile.lines.files()[:2]:
        try:
            for line in lines.build(profile, file)[1]:
                shown += [("bytes", line.peak_bytes), ("bytes", line.alloc_bytes)]
            if render:
                lines.render(profile, file)
        except lines.LookupFailed:
            pass  # two files with the same base name: the user is asked to say which
    for key, value in shown:
        assert key in SIGNED or value >= 0, (key, value)
        assert "share" not in key or value <= 1, (key, value)
    if render:
        summary.render(profile)
        table.render(profile, "leaks")
        tree.render(profile, boxed=True)
        stats.render(profile)
        flamegraph.render(profile, inverted=True)


def outcome(data: bytes, render: bool = False) -> str:
    """'refused' or 'accepted'; anything else (a traceback) fails the test."""
    try:
        profile = capture.loads(data, source=SOURCE)
    except capture.CaptureError as error:
        message = str(error)
        assert message.startswith(f"{SOURCE}: ") and "\n" not in message, message
        assert len(message) < 300, message
        return "refused"
    assert_sane(profile)
    assert_reports_build(profile, render)
    return "accepted"


@contextlib.contextmanager
def memory_cap(extra_bytes: int = 1 << 30) -> Iterator[None]:
    """Address space capped at what is mapped now plus `extra_bytes`: a mutant that blows up
    memory fails the test with MemoryError instead of taking the machine down."""
    mapped = int(Path("/proc/self/statm").read_text().split()[0]) * resource.getpagesize()
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    resource.setrlimit(resource.RLIMIT_AS, (mapped + extra_bytes, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


# --- the tests --------------------------------------------------------------------------------

MUTANTS = 2400


def test_generated_mutants(seeds: list[dict[str, Any]]) -> None:
    tally: Counter[tuple[str, str]] = Counter()
    slowest = 0.0
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with memory_cap():
        for index in range(MUTANTS):
            what, data, must_refuse = generate(seeds, index)
            # CPU time, not wall time: a loaded machine must not fail a check for hangs
            start = time.process_time()
            # text and HTML for the synthetic seeds, and for every fifth real one
            result = outcome(data, render=index % 3 != 0 or index % 5 == 0)
            slowest = max(slowest, time.process_time() - start)
            assert not (must_refuse and result == "accepted"), (index, what)
            tally[(what, result)] += 1
    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) / 1024
    print(f"\n{MUTANTS} mutants: {dict(sorted(tally.items()))}")
    print(f"slowest {slowest:.3f} s, peak RSS grew {grown_mib:.0f} MiB")
    refused = sum(n for (_, result), n in tally.items() if result == "refused")
    # the generator must exercise both sides: mostly refusals, and real accepted profiles
    assert refused > MUTANTS // 2 and MUTANTS - refused > 100, tally
    assert slowest < 10 and grown_mib < 400


MSGPACK_INTS = st.integers(min_value=-(2**63), max_value=2**64 - 1)  # all msgpack can hold


def test_every_prefix_is_refused(seeds: list[dict[str, Any]]) -> None:
    """A capture cut anywhere (a copy or a download that stopped) is refused, never half-read."""
    tried = 0
    for seed in seeds:
        body = msgpack.packb(seed)
        for data in (body, compressed(body)):
            for cut in range(len(data)):
                assert outcome(data[:cut]) == "refused", cut
            tried += len(data)
    print(f"\n{tried} prefixes refused")


@st.composite
def mutants(draw: st.DrawFn, seeds: list[dict[str, Any]]) -> bytes:
    raw = copy.deepcopy(draw(st.sampled_from(seeds)))
    way = draw(st.sampled_from(["value", "column", "bytes", "key", "name"]))
    if way == "value":
        value = draw(
            st.one_of(
                MSGPACK_INTS,
                st.integers(0, 1000),  # often valid where it lands: accepted profiles too
                st.text(max_size=20),  # any str is a valid name
                st.none(),
                st.booleans(),
                st.floats(),
                st.text(max_size=20),
                st.binary(max_size=20),
                st.lists(MSGPACK_INTS, max_size=5),
                st.dictionaries(st.text(max_size=5), MSGPACK_INTS, max_size=3),
            )
        )
        put(raw, draw(st.sampled_from(slots(raw))), value)
    elif way == "column":
        name, key = draw(st.sampled_from(columns(raw)))
        raw[name][key] = draw(st.lists(MSGPACK_INTS, max_size=40))
    elif way == "name":  # any text is a name: such profiles are accepted and reported on
        strings = raw["strings"]
        strings[draw(st.integers(0, len(strings) - 1))] = draw(st.text(max_size=40))
    elif way == "key":
        return hostile_key(raw, random.Random(draw(st.integers(0, 2**32))))
    data = pack(raw)
    if draw(st.booleans()):  # a compressed file: mutated before or after the compression
        data = compressed(data)
    if way == "bytes":
        cut = draw(st.integers(0, len(data)))
        data = data[:cut] + draw(st.binary(max_size=16)) + data[cut + draw(st.integers(0, 16)) :]
    return data


def test_hypothesis_mutants(seeds: list[dict[str, Any]]) -> None:
    tally: Counter[str] = Counter()

    @settings(
        max_examples=300,
        deadline=None,
        database=None,
        derandomize=True,  # the same examples in every run of `make test`
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(data=mutants(seeds))
    def check(data: bytes) -> None:
        tally[outcome(data)] += 1

    with memory_cap():
        check()
    print(f"\nhypothesis: {dict(tally)}")
    assert tally["refused"] and tally["accepted"]


def memlens(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "memlens", *args], capture_output=True, text=True, timeout=timeout
    )


def assert_one_line_error(run: subprocess.CompletedProcess[str], command: str, says: str) -> None:
    assert run.returncode == 2, run
    assert run.stdout == ""
    lines_out = run.stderr.splitlines()
    assert len(lines_out) == 1 and lines_out[0].startswith(f"memlens {command}: error: "), run
    assert says in lines_out[0], lines_out[0]


def test_mutants_through_the_command(seeds: list[dict[str, Any]], tmp_path: Path) -> None:
    cases = [
        (generate(seeds, 7)[1], "'stats.alloc_bytes' adds up to more than 64 bits hold"),
        (hostile_key(seeds[1], random.Random(1)), "a map key is not a string"),
        (deep(5000), "not a memlens capture"),
    ]
    raw = copy.deepcopy(seeds[0])
    raw["frames"]["line"][0] = 2**40
    cases.append((pack(raw), "'frames.line' has a value outside [0, 1000000]"))
    whole = compressed(msgpack.packb(seeds[0]))
    cases.append((whole[:-9], "truncated or corrupt capture"))
    cases.append((compressed(pack(raw)), "'frames.line' has a value outside [0, 1000000]"))
    for number, (data, says) in enumerate(cases):
        path = tmp_path / f"bad{number}.msgpack"
        path.write_bytes(data)
        command = REPORT_COMMANDS[number % len(REPORT_COMMANDS)]
        assert_one_line_error(memlens(command, str(path)), command, says)
        assert says in load_in_thread(str(path))  # what the language server's loader says
    path = tmp_path / "bad.msgpack"
    path.write_bytes(cases[0][0])
    assert_one_line_error(memlens("lines", str(path), "seed.py"), "lines", "64 bits")


def special_files(tmp_path: Path) -> list[tuple[str, str]]:
    fifo = tmp_path / "fifo.msgpack"
    os.mkfifo(fifo)
    return [
        (str(fifo), "is a FIFO, not a capture file"),
        ("/dev/zero", "is a device, not a capture file"),
        ("/dev/urandom", "is a device, not a capture file"),
        (str(tmp_path), "is a directory, not a capture file"),
        (str(tmp_path / "missing.msgpack"), "no such capture file"),
    ]


@pytest.mark.parametrize("command", [*REPORT_COMMANDS, "lines"])
def test_special_files_through_the_command(command: str, tmp_path: Path) -> None:
    """Each command with one special file (in turn), `summary` with all of them."""
    files = special_files(tmp_path)
    number = [*REPORT_COMMANDS, "lines"].index(command)
    chosen = files if command == "summary" else [files[number % len(files)]]
    for path, says in chosen:
        extra = ["x.py"] if command == "lines" else []
        # a reader that waited on the FIFO would hang: the timeout turns that into a failure
        assert_one_line_error(memlens(command, path, *extra, timeout=30), command, says)


def load_in_thread(path: str) -> str:
    """capture.load(path)'s error, waiting at most 10 s (the LSP's worker threads call it)."""
    result: list[str] = []

    def target() -> None:
        try:
            capture.load(path)
        except capture.CaptureError as error:
            result.append(str(error))

    worker = threading.Thread(target=target, daemon=True)
    worker.start()
    worker.join(10)
    assert not worker.is_alive(), f"capture.load({path!r}) hangs"
    assert len(result) == 1, f"capture.load({path!r}) accepted it"
    return result[0]


def test_special_files_through_the_loader(tmp_path: Path) -> None:
    for path, says in special_files(tmp_path):
        assert load_in_thread(path) == f"{path}: {says}"
    # CPython's words: "embedded null byte" (3.10-3.12), "...null character in path" (3.13)
    nul = load_in_thread("a\x00b")
    assert nul.startswith("a\\x00b: cannot open: ") and "embedded null" in nul, nul
    named = tmp_path / "two\nlines.msgpack"
    named.write_bytes(b"\x00")
    assert load_in_thread(str(named)) == f"{tmp_path}/two\\nlines.msgpack: not a memlens capture"


def test_unreadable_file(seeds: list[dict[str, Any]]) -> None:
    folder = Path(tempfile.mkdtemp())
    try:
        folder.chmod(0o755)
        path = folder / "secret.msgpack"
        path.write_bytes(pack(seeds[1]))
        path.chmod(0)
        if os.geteuid() == 0:  # root reads anything: read as nobody, for this call only
            os.seteuid(65534)
        try:
            message = load_in_thread(str(path))
        finally:
            os.seteuid(os.getuid())
        assert message == f"{path}: permission denied"
    finally:
        path.unlink()
        folder.rmdir()


def test_too_large_is_counted_while_reading(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(capture, "MAX_CAPTURE_BYTES", 1000)
    path = tmp_path / "big.msgpack"
    path.write_bytes(b"\x00" * 1001)
    assert load_in_thread(str(path)) == (
        f"{path}: more than 1000 bytes is too large for a memlens capture"
    )
    path.write_bytes(b"\x00" * 1000)  # at the limit: read, then refused for what it holds
    assert load_in_thread(str(path)) == f"{path}: not a memlens capture"
