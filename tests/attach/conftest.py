"""Fixtures for the attach tests: real gdb, real processes, bounded waits.

Skipped, with the reason shown, where gdb is missing or the kernel refuses to let this user
trace a process of its own (ptrace).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from attach_helpers import Program, can_trace


@pytest.fixture(scope="session")
def traceable() -> None:
    reason = can_trace()
    if reason:
        pytest.skip(reason)


@pytest.fixture
def program(tmp_path: Path, traceable: None) -> Iterator[Program]:
    started = Program(tmp_path)
    yield started
    if started.running():
        started.process.kill()
        started.process.communicate()
