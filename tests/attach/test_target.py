"""The checks made before touching a process, and the registry a detach trusts."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from memlens.attach import registry, target


def test_the_python_version_comes_from_the_elf_files() -> None:
    # Read from the executable or libpython on disk; this very process is the subject.
    versions = {target.python_version(os.getpid(), "python")}
    # 3.11+ exports Py_Version (major, minor, micro); 3.10 is told by its file names (X.Y)
    known = sys.version_info[:3] if sys.version_info >= (3, 11) else sys.version_info[:2]
    assert versions == {tuple(known)}


@pytest.fixture
def entry() -> Iterator[Path]:
    path = Path(registry.publish({"trigger": 4096, "mailbox": 8192, "mailbox_bytes": 4096}))
    yield path
    path.unlink(missing_ok=True)


def test_the_registry_finds_a_published_entry(entry: Path) -> None:
    assert oct(entry.parent.stat().st_mode & 0o777) == "0o700"
    found = registry.lookup(os.getpid(), os.geteuid())
    assert found is not None
    assert (found["trigger"], found["mailbox"], found["pid"]) == (4096, 8192, os.getpid())


@pytest.mark.parametrize(
    "change",
    [
        {"start_time": 1},  # an earlier process with the same pid
        {"trigger": "4096; shell id"},  # anything but a number never reaches gdb
        {"mailbox": True},
        {"mailbox_bytes": -1},
    ],
)
def test_the_registry_refuses_stale_or_strange_entries(entry: Path, change: dict) -> None:
    entry.write_text(json.dumps({**json.loads(entry.read_text()), **change}))
    assert registry.lookup(os.getpid(), os.geteuid()) is None


def test_the_registry_refuses_a_directory_others_may_write(entry: Path) -> None:
    folder = entry.parent
    folder.chmod(0o777)
    try:
        assert registry.lookup(os.getpid(), os.geteuid()) is None
    finally:
        folder.chmod(0o700)
    assert registry.lookup(os.getpid(), os.geteuid()) is not None
