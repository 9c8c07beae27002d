"""Captures made by the real tracker from small scripts whose allocations are known."""

from __future__ import annotations

import pytest
from real_runs import Run, runner


@pytest.fixture(scope="module")
def run_script(tmp_path_factory: pytest.TempPathFactory) -> Run:
    return runner(tmp_path_factory.mktemp("runs"))
