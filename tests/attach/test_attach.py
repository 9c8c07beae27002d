"""memlens attach / detach against real processes with real gdb: the capture is exact."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from attach_helpers import GROWER, Program, start_memlens
from attach_helpers import memlens as run_memlens

import memlens
from memlens.model import Profile

ALLOCATION_LINE = next(
    number
    for number, text in enumerate(GROWER.read_text().splitlines(), 1)
    if "# the allocation line" in text
)
APPEND_LINE = ALLOCATION_LINE + 2  # blocks.append(block): the list grows
BLOCK = sys.getsizeof(bytearray(1 << 20))  # the object and its buffer (size + 1)


def tally(out: str) -> tuple[int, int]:
    """(blocks made surely while tracked, blocks that straddle an attach or detach)."""
    found = re.search(r"tracked=(\d+) straddling=(\d+)", out)
    assert found, out
    return int(found[1]), int(found[2])


def blocks_at_line(profile: Profile) -> int:
    """How many 1 MiB blocks the capture charges to the allocation line: exact or fail."""
    stats = profile.lines.line(str(GROWER), ALLOCATION_LINE)
    assert stats is not None, "the capture does not name the allocation line"
    usage = stats.self
    blocks, rest = divmod(usage.alloc_bytes, BLOCK)
    assert rest == 0, f"{usage.alloc_bytes} bytes is not a whole number of {BLOCK}-byte blocks"
    assert usage.alloc_count == 2 * blocks  # the bytearray object, and its buffer
    # every block is kept: all of them are live at the end, and at the peak
    assert usage.leak_bytes == usage.alloc_bytes
    assert usage.peak_bytes == usage.alloc_bytes
    return blocks


def test_attach_for_a_duration_captures_the_line_exactly(program: Program, tmp_path: Path) -> None:
    capture = tmp_path / "attached.msgpack"
    attached = run_memlens("attach", str(program.pid), "-o", str(capture), "--duration", "1")
    assert attached.returncode == 0, attached.stderr
    assert f"memlens: tracking pid {program.pid} (CPython " in attached.stderr
    assert f"memlens: detached; wrote {capture} (peak " in attached.stderr
    assert program.running()

    code, out, err = program.stop()
    assert (code, err) == (0, "")
    assert out.startswith("done blocks=")  # its own output, after "ready"
    sure, straddling = tally(out)
    profile = memlens.load(capture)
    blocks = blocks_at_line(profile)
    assert sure >= 10  # a 1 s attach sees tens of 20 ms steps
    assert sure <= blocks <= sure + straddling
    assert profile.meta.pid == program.pid
    assert not (tmp_path / "attached.msgpack.partial").exists()  # the final capture replaced it
    # The attach and the detach run between two of the program's bytecodes (mostly as its
    # sleep returns): nothing they do is charged to its lines, only the blocks and their list.
    assert lines_with_allocations(profile) == {ALLOCATION_LINE, APPEND_LINE}


def lines_with_allocations(profile: Profile) -> set[int]:
    lines = range(1, len(GROWER.read_text().splitlines()) + 1)
    return {n for n in lines if (s := profile.lines.line(str(GROWER), n)) and s.self.alloc_count}


def test_detach_then_attach_again(program: Program, tmp_path: Path) -> None:
    first, second = tmp_path / "first.msgpack", tmp_path / "second.msgpack"
    attach = start_memlens("attach", str(program.pid), "-o", str(first))
    wait_for(Path(f"{first}.partial"))  # tracking, and the first checkpoint is written
    detached = run_memlens("detach", str(program.pid))
    assert detached.returncode == 0, detached.stderr
    assert f"memlens: detached from pid {program.pid}; wrote {first} (peak " in detached.stderr
    _, attach_err = attach.communicate(timeout=60)
    assert attach.returncode == 0, attach_err
    assert f"memlens: detached; wrote {first}" in attach_err  # the waiting attach saw it end

    again = run_memlens("attach", str(program.pid), "-o", str(second), "--duration", "0.5")
    assert again.returncode == 0, again.stderr
    code, out, _ = program.stop()
    assert code == 0
    sure, straddling = tally(out)
    blocks = blocks_at_line(memlens.load(first)) + blocks_at_line(memlens.load(second))
    assert sure <= blocks <= sure + straddling


def test_exit_while_attached_writes_the_complete_capture(program: Program, tmp_path: Path) -> None:
    capture = tmp_path / "to-exit.msgpack"
    attach = start_memlens("attach", str(program.pid), "-o", str(capture))
    wait_for(Path(f"{capture}.partial"))
    code, out, _ = program.stop()
    assert code == 0
    _, attach_err = attach.communicate(timeout=60)
    assert attach.returncode == 0, attach_err
    assert f"memlens: exited; wrote {capture}" in attach_err
    sure, straddling = tally(out)
    profile = memlens.load(capture)
    assert sure <= blocks_at_line(profile) <= sure + straddling


def wait_for(path: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} did not appear"
        time.sleep(0.05)


def test_ctrl_c_in_the_attaching_terminal_detaches(program: Program, tmp_path: Path) -> None:
    capture = tmp_path / "interrupted.msgpack"
    attach = start_memlens("attach", str(program.pid), "-o", str(capture))
    wait_for(Path(f"{capture}.partial"))
    attach.send_signal(signal.SIGINT)
    _, attach_err = attach.communicate(timeout=60)
    assert attach.returncode == 0, attach_err
    assert f"memlens: detached; wrote {capture}" in attach_err
    assert program.running()
    code, out, _ = program.stop()
    assert code == 0
    sure, straddling = tally(out)
    assert sure <= blocks_at_line(memlens.load(capture)) <= sure + straddling


def children(pid: int) -> list[int]:
    """The child processes of pid (gdb, while memlens attach injects its agent)."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(child) for child in (task / "children").read_text().split()]
    return found


def test_ctrl_c_while_attaching_finishes_the_attach_then_detaches(
    program: Program, tmp_path: Path
) -> None:
    capture = tmp_path / "early.msgpack"
    attach = start_memlens("attach", str(program.pid), "-o", str(capture))
    deadline = time.monotonic() + 30
    while not children(attach.pid):  # gdb is injecting: cutting it now would strand the agent
        assert time.monotonic() < deadline and attach.poll() is None, "gdb never started"
        time.sleep(0.01)
    attach.send_signal(signal.SIGINT)
    _, attach_err = attach.communicate(timeout=60)
    assert attach.returncode == 0, attach_err
    assert f"memlens: detached; wrote {capture}" in attach_err
    assert program.running()
    assert run_memlens("detach", str(program.pid)).returncode != 0  # nothing left attached
    code, out, _ = program.stop()
    assert code == 0
    sure, straddling = tally(out)
    profile = memlens.load(capture)
    if profile.lines.line(str(GROWER), ALLOCATION_LINE) is None:  # detached before a block
        assert sure == 0
    else:
        assert sure <= blocks_at_line(profile) <= sure + straddling


def test_a_target_killed_while_attached_leaves_its_last_checkpoint(
    program: Program, tmp_path: Path
) -> None:
    capture = tmp_path / "killed.msgpack"
    attach = start_memlens("attach", str(program.pid), "-o", str(capture))
    partial = Path(f"{capture}.partial")
    wait_for(partial)
    program.process.kill()
    program.process.communicate()
    _, attach_err = attach.communicate(timeout=60)
    assert attach.returncode == 1
    assert attach_err.splitlines()[-1] == (
        f"memlens: pid {program.pid} ended without a word (killed?); its last checkpoint is "
        f"{partial}"
    )
    profile = memlens.load(partial)
    assert not profile.complete
    assert blocks_at_line(profile) >= 1


def test_a_forked_child_that_exits_leaves_the_session_alone(
    tmp_path: Path, traceable: None
) -> None:
    stop = tmp_path / "stop"
    program = subprocess.Popen(
        [sys.executable, str(GROWER.parent / "forker.py"), str(stop)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert program.stdout is not None and program.stdout.readline() == "ready\n"
    capture = tmp_path / "forker.msgpack"
    attach = start_memlens("attach", str(program.pid), "-o", str(capture))
    try:
        wait_for(Path(f"{capture}.partial"))
        Path(f"{stop}.fork").touch()
        assert program.stdout.readline() == "forked\n"  # the child has exited
        assert attach.poll() is None  # still attached: the child's exit did not end the session
        detached = run_memlens("detach", str(program.pid))
        assert detached.returncode == 0, detached.stderr
        _, attach_err = attach.communicate(timeout=60)
        assert f"memlens: detached; wrote {capture}" in attach_err
    finally:
        stop.touch()
        out, _ = program.communicate(timeout=60)
        if attach.poll() is None:
            attach.kill()
            attach.communicate()
    assert (program.returncode, out) == (0, "done\n")
