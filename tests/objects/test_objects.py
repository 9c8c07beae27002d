"""Object snapshots with the real tracker: exact counts, bytes, lines and holders.

Each test profiles a function of workloads.py under memlens.Tracker and reads the snapshot back
from the capture (memlens.snapshots). Bytes are the object's block (sys.getsizeof gives it for
these types) plus the block its buffer starts: bytearray(1000) is its object and 1,001 bytes.
"""

from __future__ import annotations

import gc
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import memlens
from memlens import capture, measures
from memlens.measures import STATS_COLUMNS
from memlens.model import Profile
from memlens.snapshots import Holder, ObjectGroup, Snapshot

from . import workloads

pytestmark = pytest.mark.no_memlens  # these tests run their own Tracker


def innermost_line(profile: Profile, stack: int) -> tuple[str, int]:
    frame = profile.frames_of(stack)[-1]
    return frame.function, frame.line


def groups_at(
    profile: Profile, snapshot: Snapshot, type_name: str, marker: str
) -> list[ObjectGroup]:
    """The groups of a type whose stack passes through a marked line of workloads.py."""
    site = (workloads.__file__, workloads.line_of(marker))
    return [
        g
        for g in snapshot.objects
        if g.type == type_name
        and g.stack >= 0
        and site in {(f.file, f.line) for f in profile.frames_of(g.stack)}
    ]


def holders_of(snapshot: Snapshot, group: ObjectGroup) -> list[Holder]:
    return [h for h in snapshot.holders if (h.type, h.stack) == (group.type, group.stack)]


@pytest.fixture
def collector_off() -> Iterator[None]:
    """The cycles stay until the test ends (the collector would free them)."""
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
        gc.collect()


def test_bytearrays_in_a_class_attribute() -> None:
    try:
        with memlens.Tracker(None, snapshot_at_exit=False) as tracker:
            workloads.fill_cache(10_000)
            assert tracker.snapshot("filled") is True
        (snapshot,) = tracker.profile.snapshots
        assert snapshot.label == "filled" and snapshot.complete
        (group,) = groups_at(tracker.profile, snapshot, "bytearray", "FILL")
        per_object = sys.getsizeof(bytearray(1000))  # the object and its 1,001-byte buffer
        assert per_object == object.__sizeof__(bytearray()) + 1001
        assert (group.count, group.bytes) == (10_000, 10_000 * per_object)
        (holder,) = holders_of(snapshot, group)
        assert (holder.count, holder.bytes, holder.root) == (10_000, group.bytes, "class")
        assert holder.text == (
            f"Cache.entries (dict, 10,000 items) <- class Cache <- module {workloads.__name__}"
        )
        # the dict and the class were made before tracking: no stack for them
        assert [step.stack for step in holder.steps] == [-1, -1, -1]
    finally:
        workloads.Cache.entries.clear()


def test_cycles_the_collector_has_not_freed_are_unreachable(collector_off: None) -> None:
    with memlens.Tracker(None, snapshot_at_exit=False) as tracker:
        workloads.make_cycles(5_000)
        memlens.snapshot("cycles")
    (snapshot,) = tracker.profile.snapshots
    (group,) = groups_at(tracker.profile, snapshot, f"{workloads.__name__}.Pair", "PAIRS")
    assert group.count == 10_000
    assert group.bytes == pairs_bytes(tracker.profile, group)
    (holder,) = holders_of(snapshot, group)
    assert (holder.root, holder.count, holder.bytes) == ("unreachable", 10_000, group.bytes)
    assert holder.text == (
        "Pair.other (Pair) <- Pair <- reference cycle not collected "
        "(collector disabled or not yet run)"
    )
    pairs = [step.stack for step in holder.steps[:2]]
    assert pairs == [group.stack, group.stack]  # the Pairs of the cycle, made at that line


def test_objects_reached_only_through_a_lost_cycle_are_unreachable(collector_off: None) -> None:
    # The strings are not in gc.get_objects() (the census's seeds): the census finds them
    # by traversal, 20,000 objects after the last seed, and the holders' test of the cycle
    # reads what the seeds hold of each (once out of bounds: a crash on pandas).
    with memlens.Tracker(None, snapshot_at_exit=False) as tracker:
        workloads.lose_strs_in_a_cycle(20_000)
        memlens.snapshot("lost")
    (snapshot,) = tracker.profile.snapshots
    (group,) = groups_at(tracker.profile, snapshot, "str", "LOST_STRS")
    assert group.count == 20_000
    assert group.bytes == 20_000 * sys.getsizeof("lost-000000")
    (holder,) = holders_of(snapshot, group)
    assert (holder.root, holder.count, holder.bytes) == ("unreachable", 20_000, group.bytes)


def test_what_code_objects_hold_is_counted_at_the_line_that_compiled_it() -> None:
    # Code objects have no tp_traverse: the census follows their fields itself, so a lambda's
    # code object (in its parent's constants) and its constant are found and counted. The
    # collector untracks a tuple of untracked objects (the constants) when it meets one: then
    # only a code object leads there.
    with memlens.Tracker(None, snapshot_at_exit=False) as tracker:
        made = workloads.compile_function(100_000)
        gc.collect()
        memlens.snapshot("compiled")
    (snapshot,) = tracker.profile.snapshots
    (code,) = groups_at(tracker.profile, snapshot, "code", "COMPILED")
    assert code.count == 2  # made's and its lambda's (the module's died after exec)
    (data,) = groups_at(tracker.profile, snapshot, "bytes", "COMPILED")
    constant = sys.getsizeof(b"x" * 100_000)
    # The constant and the code objects' small tables (line tables, and on 3.10 their bytecode)
    assert constant <= data.bytes < constant + 1024
    assert made()() == b"x" * 100_000


def pairs_bytes(profile: Profile, group: ObjectGroup) -> int:
    """The blocks of the group's Pairs. A Pair's block is the object and its pre-header (GC
    header; the managed dict pointers on 3.11, and weakref on 3.12), and on 3.13 its inline
    values too, whose size varies with what the class's shared keys had learnt: there the
    tracker's own live bytes at that line (only the Pairs are allocated there) are the answer."""
    if sys.version_info >= (3, 13):
        rows = profile.stats.stack == group.stack
        leak_columns = [measures.COLUMNS.index("leak_count"), measures.COLUMNS.index("leak_bytes")]
        leaks = profile.stats.values[rows][:, leak_columns].sum(axis=0).tolist()
        assert leaks[0] == group.count
        return int(leaks[1])
    pair = workloads.Pair()
    if sys.version_info >= (3, 12):
        return group.count * sys.getsizeof(pair)  # which counts the pre-header from 3.12
    if sys.version_info >= (3, 11):
        return group.count * (object.__sizeof__(pair) + 16 + 16)  # GC header, dict pointers
    return group.count * (object.__sizeof__(pair) + 16)  # GC header


def test_two_snapshots_around_100_000_strs() -> None:
    with memlens.Tracker(None, snapshot_at_exit=False) as tracker:
        memlens.snapshot("before")
        kept = workloads.build_strs(100_000)
        memlens.snapshot("after")
    before, after = tracker.profile.snapshots
    assert [before.label, after.label] == ["before", "after"]
    assert before.t_ms <= after.t_ms
    assert groups_at(tracker.profile, before, "str", "STRS") == []
    (group,) = groups_at(tracker.profile, after, "str", "STRS")
    assert group.count == 100_000
    assert group.bytes == sum(map(sys.getsizeof, kept))
    (holder,) = holders_of(after, group)
    assert (holder.root, holder.count, holder.bytes) == ("frame", 100_000, group.bytes)
    assert holder.steps[0].text == (
        "local kept in test_two_snapshots_around_100_000_strs() (list, 100,000 items)"
    )
    assert holder.steps[1].text.startswith("frame test_two_snapshots_around_100_000_strs (")
    del kept


def test_a_numpy_buffer_is_counted_under_its_array() -> None:
    pytest.importorskip("numpy")
    with memlens.Tracker(None, snapshot_at_exit=False) as tracker:
        array = workloads.numpy_array(1_000_000)
        memlens.snapshot("array")
    (snapshot,) = tracker.profile.snapshots
    (group,) = groups_at(tracker.profile, snapshot, "numpy.ndarray", "NUMPY")
    assert (group.count, group.bytes) == (1, type(array).__basicsize__ + 8_000_000)
    (holder,) = holders_of(snapshot, group)
    assert holder.root == "frame"
    assert holder.steps[0].text == (
        "local array in test_a_numpy_buffer_is_counted_under_its_array() (ndarray)"
    )
    del array


def test_a_buffer_several_arrays_export_is_counted_once_under_its_own_array() -> None:
    # The views made later export the same buffer pointer: the block goes to the array made
    # where the block was allocated, whichever the census met first.
    pytest.importorskip("numpy")
    with memlens.Tracker(None, snapshot_at_exit=False) as tracker:
        base, views = workloads.numpy_views(1_000_000)
        memlens.snapshot("views")
    (snapshot,) = tracker.profile.snapshots
    (array,) = groups_at(tracker.profile, snapshot, "numpy.ndarray", "BASE")
    (view_group,) = groups_at(tracker.profile, snapshot, "numpy.ndarray", "VIEWS")
    basic = type(base).__basicsize__
    assert (array.count, array.bytes) == (1, basic + 8_000_000)
    assert (view_group.count, view_group.bytes) == (3, 3 * basic)
    del base, views


def test_exit_snapshot_at_stop() -> None:
    with memlens.Tracker(None) as tracker:
        kept = workloads.build_strs(1_000)
    (snapshot,) = tracker.profile.snapshots
    assert snapshot.label == "exit"
    (group,) = groups_at(tracker.profile, snapshot, "str", "STRS")
    assert (group.count, group.bytes) == (1_000, sum(map(sys.getsizeof, kept)))


def test_no_tracker_no_snapshot() -> None:
    assert memlens.snapshot("nothing") is False
    tracker = memlens.Tracker(None)
    assert tracker.snapshot("not started") is False
    with pytest.raises(TypeError, match="a snapshot label is a str, not int"):
        memlens.snapshot(3)  # type: ignore[arg-type]


def numbers(profile: Profile) -> list[tuple[object, ...]]:
    """Every stats row, by its frames (stack ids may differ between runs)."""
    rows = []
    for i in range(len(profile.stats)):
        stack = int(profile.stats.stack[i])
        frames = tuple((f.function, f.line) for f in profile.frames_of(stack)) if stack >= 0 else ()
        # the stats columns: the ref columns are the exit snapshot's own result
        values = profile.stats.values[i, : len(STATS_COLUMNS)].tolist()
        rows.append((frames, int(profile.stats.domain[i]), *values))
    return sorted(rows)


def run_churn(snapshots: bool) -> Profile:
    with memlens.Tracker(None, snapshot_at_exit=snapshots, current_thread_only=True) as tracker:
        first = workloads.churn(2_000)
        if snapshots:
            memlens.snapshot("one")
        second = workloads.churn(2_000)
        if snapshots:
            memlens.snapshot("two")
    del first, second
    return tracker.profile


def test_a_snapshot_changes_no_number() -> None:
    run_churn(False)  # warm: free lists and caches as they will be
    without = run_churn(False)
    with_snapshots = run_churn(True)
    assert [s.label for s in with_snapshots.snapshots] == ["one", "two", "exit"]
    assert without.snapshots == ()
    assert numbers(with_snapshots) == numbers(without)
    assert with_snapshots.totals.alloc_count == without.totals.alloc_count
    assert with_snapshots.totals.peak_bytes == without.totals.peak_bytes


def test_memlens_run_takes_the_program_snapshots_and_one_at_exit(tmp_path: Path) -> None:
    script = tmp_path / "app.py"
    script.write_text(
        "import memlens\n"
        "\n"
        "class Cache:\n"
        "    entries = {}\n"
        "\n"
        "for i in range(1_000):\n"
        "    Cache.entries[i] = bytearray(100)\n"
        'memlens.snapshot("filled")\n'
    )
    profile = capture.load(workloads.memlens_run(script))
    assert [s.label for s in profile.snapshots] == ["filled", "exit"]
    for snapshot in profile.snapshots:
        (group,) = [
            g
            for g in snapshot.objects
            if g.type == "bytearray" and g.stack >= 0 and profile.frames_of(g.stack)[-1].line == 7
        ]
        assert (group.count, group.bytes) == (1_000, 1_000 * sys.getsizeof(bytearray(100)))
        (holder,) = holders_of(snapshot, group)
        assert holder.text == "Cache.entries (dict, 1,000 items) <- class Cache <- module __main__"
        # the class is the program's: its line is known (the dict may come from a free list)
        class_step = holder.steps[1]
        assert class_step.text == "class Cache"
        assert profile.frames_of(class_step.stack)[-1].line == 3


def test_a_failing_exit_snapshot_never_costs_the_capture(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from memlens import objects

    def broken(label: str, **options: object) -> bool:
        raise MemoryError("no room")

    monkeypatch.setattr(objects, "take", broken)
    with memlens.Tracker(None) as tracker:
        kept = workloads.build_strs(10)
    assert not memlens._native.is_tracking()
    assert tracker.profile.snapshots == ()
    assert capsys.readouterr().err == "memlens: no exit object snapshot: MemoryError: no room\n"
    del kept
