"""The language server's settings: the temporary-allocation threshold reaches `memlens run`."""

from __future__ import annotations

from pathlib import Path

from memlens.lsp import runner, settings


def run_with(threshold: int) -> runner.Run:
    return runner.Run(
        interpreter="python3",
        script="s.py",
        args=[],
        capture=Path("c.msgpack"),
        cwd=".",
        env={},
        temporary_allocation_threshold=threshold,
    )


def test_the_threshold_is_read_and_passed_to_memlens_run() -> None:
    parsed, problems = settings.parse({"temporaryAllocationThreshold": 0})
    assert problems == []
    assert parsed.temporary_allocation_threshold == 0
    command = run_with(parsed.temporary_allocation_threshold).command()
    at = command.index("--temporary-allocation-threshold")
    assert command[at + 1] == "0" and at < command.index("s.py")


def test_a_bad_threshold_falls_back_to_memrays_default_and_says_so() -> None:
    for bad in (65, -1, 1.5, True, "2"):
        parsed, problems = settings.parse({"temporaryAllocationThreshold": bad})
        assert parsed.temporary_allocation_threshold == 1
        assert len(problems) == 1 and problems[0].startswith("memlens.temporaryAllocationThreshold")
