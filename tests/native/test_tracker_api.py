"""`memlens.Tracker`, the Python API, with the real tracker, in this process."""

from __future__ import annotations

import inspect
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from types import FrameType

import pytest

import memlens
from memlens import _native, capture

# These tests run their own Tracker in-process: `pytest --memlens` must leave them alone.
pytestmark = pytest.mark.no_memlens

MiB = 2**20
KiB = 2**10
# A constant, not `10 * MiB` at the line: that product is a 28-byte int, live while the buffer is
# made, and whether it is in the line's peak then depends on what later lines allocate (on 3.10,
# whether here()'s frame object is a fresh one or the one its code object kept).
TEN_MIB = 10 * MiB


def here() -> int:
    """The caller's line number."""
    frame = inspect.currentframe()
    assert frame is not None and frame.f_back is not None
    return frame.f_back.f_lineno


def test_profile_after_the_block_has_the_allocation_at_its_line(tmp_path: Path) -> None:
    output = tmp_path / "out.msgpack"
    with memlens.Tracker(output) as tracker:
        buffer = bytearray(TEN_MIB)
        line = here() - 1
    assert not _native.is_tracking()
    stats = tracker.profile.lines.line(__file__, line)
    assert stats is not None
    assert stats.function == "test_profile_after_the_block_has_the_allocation_at_its_line"
    assert stats.self.peak_bytes == 10 * MiB + 57  # data, NUL, object
    assert stats.self.leak_bytes == 10 * MiB + 57
    assert tracker.profile.complete and tracker.profile.meta.python_allocators
    assert tracker.profile.meta.argv == sys.argv
    # the same capture was written to the output file
    assert tracker.capture_bytes == capture.body(output.read_bytes())  # the file: compressed
    assert capture.load(output).totals.peak_bytes == tracker.profile.totals.peak_bytes
    assert tracker.profile is tracker.profile  # loaded once
    del buffer


def test_frees_of_memory_from_before_the_block_are_ignored() -> None:
    older = bytearray(20 * MiB)
    with memlens.Tracker() as tracker:
        del older  # allocated before tracking: not the block's business
        newer = bytearray(MiB)
    totals = tracker.profile.totals
    assert MiB <= totals.peak_bytes < MiB + 64 * KiB
    assert MiB <= totals.leak_bytes < MiB + 64 * KiB
    del newer


def test_options_reach_the_capture(tmp_path: Path) -> None:
    with memlens.Tracker(python_allocators=False, checkpoint_interval=0) as tracker:
        buffer = bytearray(2 * MiB)
        line = here() - 1
    profile = tracker.profile
    assert not profile.meta.python_allocators
    stats = profile.lines.line(__file__, line)
    assert stats is not None and stats.self.peak_bytes_by_domain[0] == 0
    assert abs(stats.self.peak_bytes_by_domain[1] - 2 * MiB) < KiB
    assert list(tmp_path.iterdir()) == []  # no output: nothing written
    del buffer


def test_tracker_inside_a_tracker_is_a_clear_error() -> None:
    with memlens.Tracker() as outer:
        with pytest.raises(RuntimeError, match="already tracking.*cannot run inside another"):
            with memlens.Tracker():
                pass  # pragma: no cover
        assert _native.is_tracking()  # the outer one goes on
        data = bytearray(3 * MiB)
    assert outer.profile.totals.peak_bytes >= 3 * MiB
    del data


def test_a_tracker_runs_once_and_has_no_profile_before_it_stops() -> None:
    tracker = memlens.Tracker()
    with pytest.raises(RuntimeError, match="has not stopped"):
        tracker.profile  # noqa: B018
    with tracker:
        with pytest.raises(RuntimeError, match="has not stopped"):
            tracker.profile  # noqa: B018
    with pytest.raises(RuntimeError, match="only once"):
        tracker.start()
    with pytest.raises(RuntimeError, match="not tracking"):
        tracker.stop()


def test_an_exception_in_the_block_stops_tracking_and_keeps_the_profile() -> None:
    tracker = memlens.Tracker()
    with pytest.raises(ZeroDivisionError), tracker:
        data = bytearray(4 * MiB)
        1 / 0  # noqa: B018
    assert not _native.is_tracking()
    assert tracker.profile.totals.peak_bytes >= 4 * MiB
    del data


def test_threads_are_named_and_the_previous_profile_hook_comes_back() -> None:
    calls: list[str] = []

    def user_hook(frame: FrameType, event: str, arg: object) -> None:
        # (not threading.current_thread(): at a thread's very end that makes a dummy thread)
        calls.append(frame.f_code.co_name)

    release = threading.Event()
    before = threading.Thread(target=release.wait, name="started-before")
    before.start()
    threading.setprofile(user_hook)
    try:
        keep: list[bytearray] = []
        with memlens.Tracker() as tracker:
            during = threading.Thread(
                target=lambda: keep.append(bytearray(MiB)), name="started-during"
            )
            during.start()
            during.join()
            before.name = "renamed-before"  # alive at stop: its name then wins
        release.set()
        before.join()
        assert threading.getprofile() is user_hook
    finally:
        threading.setprofile(None)
    names = set(tracker.profile.threads.values())
    assert {"MainThread", "renamed-before", "started-during"} <= names
    assert "<lambda>" in calls  # the user's hook still ran in the new thread
    rows = tracker.profile.stats
    during_ids = [t for t, n in tracker.profile.threads.items() if n == "started-during"]
    leak = sum(
        int(rows.values[i, 5]) for i in range(len(rows)) if int(rows.thread[i]) in during_ids
    )
    assert MiB <= leak < MiB + 64 * KiB  # the buffer, and the thread's own few objects


def test_forked_child_without_follow_fork_leaves_the_parent_capture_alone(tmp_path: Path) -> None:
    script = tmp_path / "fork.py"
    output = tmp_path / "out.msgpack"
    script.write_text(
        textwrap.dedent(
            f"""
            import os, memlens
            with memlens.Tracker({str(output)!r}) as tracker:
                parent = bytearray(2 * 2**20)
                pid = os.fork()
                if pid == 0:
                    child = bytearray(5 * 2**20)
            if pid == 0:
                print("child", tracker.capture_bytes, flush=True)
                os._exit(0)
            os.waitpid(pid, 0)
            print("parent", tracker.profile.meta.pid == os.getpid(),
                  tracker.profile.totals.peak_bytes // 2**20)
            """
        )
    )
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=60, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    assert sorted(done.stdout.splitlines()) == ["child None", "parent True 2"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fork.py", "out.msgpack"]


def churn(rounds: int) -> tuple[int, int]:
    """Each round: `first` is freed after one more allocation (`second`), `second` at once."""
    for _ in range(rounds):
        first = bytes(100_000)
        second = bytes(100_000)
        del first
        del second
    return here() - 4, here() - 3


@pytest.mark.parametrize(("threshold", "first_temporaries"), [(0, 0), (1, 100), (8, 100)])
def test_the_temporary_allocation_threshold_is_memrays(
    threshold: int, first_temporaries: int
) -> None:
    # Memray's threshold N: freed within N allocations of its thread. 0 is "freed before the
    # thread allocates again"; the default 1 also catches a buffer freed right after the one
    # that replaces it (a growing vector).
    churn(1)  # warm: nothing of the first call's set-up in the numbers
    with memlens.Tracker(temporary_threshold=threshold) as tracker:
        first_line, second_line = churn(100)
    profile = tracker.profile
    assert profile.meta.temporary_threshold == threshold
    first = profile.lines.line(__file__, first_line)
    second = profile.lines.line(__file__, second_line)
    assert first is not None and second is not None
    assert first.self.temp_count == first_temporaries
    assert second.self.temp_count == 100
    assert second.self.temp_bytes == 100 * (100_000 + 33)  # bytes object: 33 B header


def test_a_threshold_outside_0_to_64_is_refused() -> None:
    with pytest.raises(ValueError, match="between 0 and 64"):
        memlens.Tracker(temporary_threshold=65).start()
    assert not _native.is_tracking()
