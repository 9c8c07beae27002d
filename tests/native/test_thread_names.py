"""A thread's allocations go under the name it had when it made them, as Memray reports them:
a rename of Python's `Thread.name` while the thread runs splits its rows exactly at the rename
(DESIGN.md "Threads and fork"; OS renames: test_self_exclusion.py)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest

import memlens
from memlens import measures
from memlens.model import Profile

pytestmark = pytest.mark.no_memlens  # these tests run their own Tracker

MiB = 1 << 20


def valloc_bytes_by_thread(profile: Profile) -> dict[str, int]:
    """Bytes allocated by the C valloc helper (only native rows: python_allocators=False), per
    thread name."""
    alloc = measures.COLUMNS.index("alloc_bytes")
    by_name: dict[str, int] = {}
    for row in range(len(profile.stats)):
        if int(profile.stats.domain[row]) != 1:
            continue
        frames = profile.frames_of(int(profile.stats.stack[row]))
        if not frames or frames[-1].function.rpartition(".")[2] != "allocate":
            continue
        name = profile.threads[int(profile.stats.thread[row])]
        by_name[name] = by_name.get(name, 0) + int(profile.stats.values[row, alloc])
    return by_name


class Allocator:
    """Allocates with valloc from the function `allocate`, whose rows the tests pick out."""

    def __init__(self, clib: Any) -> None:
        self.clib = clib
        self.blocks: list[int] = []

    def allocate(self, size: int) -> None:
        self.blocks.append(self.clib.helper_valloc(size))

    def free_all(self) -> None:
        for block in self.blocks:
            self.clib.helper_free(block)


def run_in_thread(body: Callable[[], None], name: str) -> Profile:
    with memlens.Tracker(python_allocators=False) as tracker:
        worker = threading.Thread(target=body, name=name)
        worker.start()
        worker.join()
    return tracker.profile


def test_a_thread_renamed_by_python_while_it_runs_splits_at_the_rename(clib: Any) -> None:
    allocator = Allocator(clib)

    def body() -> None:
        allocator.allocate(MiB)
        threading.current_thread().name = "b"
        allocator.allocate(2 * MiB)

    profile = run_in_thread(body, "a")
    allocator.free_all()
    assert valloc_bytes_by_thread(profile) == {"a": MiB, "b": 2 * MiB}


def test_a_thread_renamed_by_another_thread_splits_at_the_rename(clib: Any) -> None:
    allocator = Allocator(clib)
    renamed, allocated = threading.Event(), threading.Event()

    def body() -> None:
        allocator.allocate(MiB)
        allocated.set()
        renamed.wait()
        allocator.allocate(2 * MiB)

    with memlens.Tracker(python_allocators=False) as tracker:
        worker = threading.Thread(target=body, name="a")
        worker.start()
        allocated.wait()
        worker.name = "b"
        renamed.set()
        worker.join()
        worker.name = "after-it-ended"  # what it allocated keeps the names it had then
    allocator.free_all()
    assert valloc_bytes_by_thread(tracker.profile) == {"a": MiB, "b": 2 * MiB}


def test_the_main_thread_renamed_splits_at_the_rename(clib: Any) -> None:
    allocator = Allocator(clib)
    main = threading.main_thread()
    assert main.name == "MainThread"
    try:
        with memlens.Tracker(python_allocators=False) as tracker:
            allocator.allocate(MiB)
            main.name = "main-renamed"
            allocator.allocate(2 * MiB)
    finally:
        main.name = "MainThread"
    allocator.free_all()
    assert valloc_bytes_by_thread(tracker.profile) == {"MainThread": MiB, "main-renamed": 2 * MiB}


class NamedInInit(threading.Thread):
    """User code that names its thread in __init__, before it starts, and renames it in run."""

    def __init__(self, allocator: Allocator) -> None:
        super().__init__()
        self.name = "named-in-init"
        self.allocator = allocator

    def run(self) -> None:
        self.allocator.allocate(MiB)
        self.name = "renamed-in-run"
        self.allocator.allocate(2 * MiB)


def test_a_subclass_named_in_init_and_renamed_in_run_splits_at_the_rename(clib: Any) -> None:
    allocator = Allocator(clib)
    name_property = threading.Thread.__dict__["name"]
    with memlens.Tracker(python_allocators=False) as tracker:
        worker = NamedInInit(allocator)
        worker.start()
        worker.join()
        with pytest.raises(AssertionError, match="Thread.__init__"):
            threading.Thread.__new__(threading.Thread).name = "x"  # as without memlens
    allocator.free_all()
    assert valloc_bytes_by_thread(tracker.profile) == {
        "named-in-init": MiB,
        "renamed-in-run": 2 * MiB,
    }
    assert threading.Thread.__dict__["name"] is name_property
