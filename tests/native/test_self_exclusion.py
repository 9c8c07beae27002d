"""memlens never counts itself: exact numbers around a Tracker, its focus, and `memlens run`'s
stacks, with the real tracker (DESIGN.md "memlens never counts itself")."""

from __future__ import annotations

import ctypes
import itertools
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import msgpack
import pytest

import memlens
from memlens import _native, capture
from memlens.model import Profile

pytestmark = pytest.mark.no_memlens  # these tests run their own Tracker

MEMLENS_DIR = os.path.dirname(memlens.__file__)


def function_name(function: Any) -> str:
    """As a capture names it: the qualified name (3.11+), the bare name on 3.10."""
    code = function.__code__
    return str(getattr(code, "co_qualname", code.co_name))


def memlens_files(profile: Profile) -> list[str]:
    return sorted({f.file for f in profile.frames if f.file.startswith(MEMLENS_DIR)})


def test_an_empty_block_counts_nothing() -> None:
    with memlens.Tracker() as tracker:
        pass
    profile = tracker.profile
    totals = profile.totals
    assert (totals.alloc_count, totals.alloc_bytes, totals.peak_bytes, totals.leak_bytes) == (
        0,
        0,
        0,
        0,
    )
    assert len(profile.stats) == 0


def test_kept_vallocs_peak_at_exactly_their_size(clib: Any) -> None:
    kept = (ctypes.c_void_p * 100)()  # made before: storing a pointer allocates nothing
    with memlens.Tracker(python_allocators=False) as tracker:
        for i in range(100):
            kept[i] = clib.helper_valloc(1024)
    totals = tracker.profile.totals
    assert (totals.alloc_count, totals.alloc_bytes) == (100, 102_400)
    assert totals.peak_bytes == 102_400
    assert totals.leak_bytes == 102_400
    for pointer in kept:
        clib.helper_free(pointer)


def test_a_churning_line_shows_its_real_peak(clib: Any) -> None:
    malloc, free = clib.helper_malloc, clib.helper_free
    with memlens.Tracker(python_allocators=False) as tracker:
        for _ in range(300_000):
            free(malloc(64))
    line = sys._getframe().f_lineno - 1
    profile = tracker.profile
    assert profile.totals.peak_bytes == 64
    stats = profile.lines.line(__file__, line)
    assert stats is not None
    assert stats.self.peak_bytes == 64
    assert (stats.self.alloc_count, stats.self.alloc_bytes) == (300_000, 300_000 * 64)
    assert (stats.self.temp_count, stats.self.leak_bytes) == (300_000, 0)


def test_the_block_is_charged_from_the_entering_frame_down() -> None:
    with memlens.Tracker() as tracker:
        data = bytearray(10_000)
    line = sys._getframe().f_lineno - 1
    profile = tracker.profile
    assert profile.totals.peak_bytes == profile.totals.leak_bytes == 10_057  # data, NUL, object
    assert memlens_files(profile) == []
    (row,) = range(len(profile.stats))
    frames = profile.frames_of(int(profile.stats.stack[row]))
    # This test's frame is the root: pytest's frames above it are cut at the source.
    assert [(f.function, f.line) for f in frames] == [
        ("test_the_block_is_charged_from_the_entering_frame_down", line)
    ]
    del data


def begin(tracker: memlens.Tracker) -> None:
    tracker.start()


def make_buffer() -> bytearray:
    return bytearray(5000)


def test_started_in_a_helper_counts_below_the_helpers_caller_only() -> None:
    tracker = memlens.Tracker()
    begin(tracker)  # the root is begin(); this test's frame, its caller, is cut
    here = bytearray(1000)  # in the cut frame itself: not counted
    there = make_buffer()  # under it: counted, and its stack begins at make_buffer
    tracker.stop()
    profile = tracker.profile
    assert profile.totals.leak_bytes == profile.totals.alloc_bytes == 5057
    roots = {profile.frames_of(int(s))[0].function for s in profile.stats.stack}
    assert roots == {"make_buffer"}
    del here, there


def test_no_frame_of_memlens_in_a_busy_capture() -> None:
    def work() -> list[bytearray]:
        return [bytearray(1000) for _ in range(100)]

    kept: list[Any] = []
    with memlens.Tracker() as tracker:
        worker = threading.Thread(target=lambda: kept.append(work()), name="busy")
        worker.start()
        worker.join()
        kept.append(work())
        memlens_snapshot = _native.snapshot()
    profile = tracker.profile
    assert memlens_files(profile) == []
    assert "busy" in profile.threads.values()
    assert profile.totals.leak_bytes >= 2 * 100 * 1057
    del memlens_snapshot


def test_a_focus_counts_only_its_own_frames_and_its_own_high_watermark() -> None:
    def focused() -> None:
        temporary = bytearray(2000)
        del temporary

    def outside() -> bytearray:
        return bytearray(100_000)

    focused()  # a first call may fill interpreter caches (3.12 keeps 72 B): not the point here
    with memlens.Tracker(focus=focused) as tracker:
        noise = outside()
        focused()
        del noise
    profile = tracker.profile
    # The 100 KB outside the focus is not the focus's: its peak is its own 2,057 bytes.
    assert profile.totals.peak_bytes == 2057
    assert profile.totals.alloc_bytes == 2057
    assert profile.totals.leak_bytes == 0
    roots = {profile.frames_of(int(s))[0].function for s in profile.stats.stack}
    assert roots == {function_name(focused)}


def test_current_thread_only_leaves_other_threads_out() -> None:
    kept: list[bytearray] = []
    with memlens.Tracker(current_thread_only=True) as tracker:
        worker = threading.Thread(target=lambda: kept.append(bytearray(2**20)), name="other")
        worker.start()
        worker.join()
        mine = bytearray(3000)
    line = sys._getframe().f_lineno - 1
    profile = tracker.profile
    assert {profile.threads[int(t)] for t in profile.stats.thread} == {"MainThread"}
    assert profile.totals.peak_bytes < 2**20  # the worker's MiB is not there
    stats = profile.lines.line(__file__, line)
    assert stats is not None and stats.self.leak_bytes == 3057
    del mine


def leaked_by_thread_name(profile: Profile) -> dict[str, int]:
    leaked: dict[str, int] = {}
    for row in range(len(profile.stats)):
        name = profile.threads[int(profile.stats.thread[row])]
        leaked[name] = leaked.get(name, 0) + int(profile.stats.values[row, 5])
    return leaked


def test_a_thread_renamed_through_ctypes_prctl_is_seen_by_the_sampler() -> None:
    libc = ctypes.CDLL(None)  # libc's own prctl: no hook sees the call, the sampler does
    pr_set_name = 15
    kept: list[bytearray] = []

    def rename_then_allocate() -> None:
        kept.append(bytearray(100_000))
        libc.prctl(pr_set_name, b"renamed-by-os", 0, 0, 0)
        time.sleep(0.1)  # the sampler reads OS names every 10 ms
        kept.append(bytearray(200_000))

    with memlens.Tracker() as tracker:
        worker = threading.Thread(target=rename_then_allocate, name="before-rename")
        worker.start()
        worker.join()
    leaked = leaked_by_thread_name(tracker.profile)
    assert 100_057 <= leaked["before-rename"] < 100_057 + 4096
    assert 200_057 <= leaked["renamed-by-os"] < 200_057 + 4096


def test_a_thread_renamed_by_a_library_allocates_under_its_new_name_at_once(clib: Any) -> None:
    kept: list[bytearray] = []

    def rename_then_allocate() -> None:
        kept.append(bytearray(100_000))
        clib.helper_set_thread_name(b"lib-renamed")  # through a PLT: the prctl hook sees it
        kept.append(bytearray(200_000))

    with memlens.Tracker() as tracker:
        worker = threading.Thread(target=rename_then_allocate, name="named-by-python")
        worker.start()
        worker.join()
    leaked = leaked_by_thread_name(tracker.profile)
    assert 100_057 <= leaked["named-by-python"] < 100_057 + 4096
    assert 200_057 <= leaked["lib-renamed"] < 200_057 + 4096


def test_memlens_run_stacks_begin_at_the_script(tmp_path: Path) -> None:
    # memlens run's own frames (bin/memlens or runpy, memlens.cli, its helpers and what they
    # call, such as threading.enumerate when it waits for the program's threads) never enter.
    (tmp_path / "job.py").write_text(
        "import threading\n"
        "def build():\n"
        "    return [bytearray(1000) for _ in range(10)]\n"
        "data = build()\n"
        "t = threading.Thread(target=build)\n"
        "t.start(); t.join()\n"
    )
    subprocess.run(
        [sys.executable, "-m", "memlens", "run", "-o", "cap.msgpack", "job.py"],
        cwd=tmp_path,
        check=True,
        capture_output=True,
        timeout=120,
    )
    # The raw capture, not capture.load: no reader may need to rewrite it.
    raw = msgpack.unpackb(capture.body((tmp_path / "cap.msgpack").read_bytes()))
    strings, frames, stacks = raw["strings"], raw["frames"], raw["stacks"]
    assert raw["version"] == 2  # parents as distances back, trie frames as deltas
    frame_of = list(itertools.accumulate(stacks["frame"]))
    roots = set()
    for node, gap in enumerate(stacks["parent"]):
        if gap == node + 1:  # a root
            frame = frame_of[node]
            roots.add((strings[frames["function"][frame]], strings[frames["file"][frame]]))
    script = str(tmp_path / "job.py")
    thread_root = (function_name(threading.Thread._bootstrap), threading.__file__)
    assert roots == {("<module>", script), thread_root}
    files = {strings[f] for f in frames["file"]}
    assert not any(f.startswith(MEMLENS_DIR) or f.endswith("runpy.py") for f in files)
