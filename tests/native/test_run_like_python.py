"""Under `memlens run` the program behaves as under plain python: it dies of the signals python
dies of (after the capture is written), a followed fork child leaves its capture however it ends,
and the program starts with the same modules loaded (none of memlens's)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from test_run_program import SCRIPTS, leaked_at

from memlens import capture
from memlens.model import Profile

MiB = 2**20
KiB = 2**10
MEMLENS_RUN = [sys.executable, "-m", "memlens", "run"]
ENDS = SCRIPTS / "ends_by_signal.py"


def default_sigint() -> None:
    # A shell's background job inherits SIGINT ignored, and python then keeps ignoring it.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def run_until_signal(argv: list[str], cwd: Path, signum: int | None) -> tuple[int, str]:
    """Run argv; once it says "ready", send it signum; its return code and stderr."""
    with subprocess.Popen(
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=cwd,
        preexec_fn=default_sigint,  # noqa: PLW1509 (no threads in the test process to fear)
    ) as child:
        try:
            if signum is not None:
                assert child.stdout is not None
                assert child.stdout.readline().startswith("ready ")
                child.send_signal(signum)
            _, stderr = child.communicate(timeout=60)
        finally:
            child.kill()
    return child.returncode, stderr


def complete_capture(output: Path, exit_code: int | None) -> Profile:
    profile = capture.load(output)
    assert profile.complete
    assert profile.meta.exit_code == exit_code
    assert not Path(f"{output}.partial").exists()
    return profile


# --- signals -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("how", "signum", "returncode"),
    [
        ("raise", None, -signal.SIGINT),  # an unhandled KeyboardInterrupt
        ("sleep", signal.SIGINT, -signal.SIGINT),  # Ctrl-C from the parent
        ("sleep", signal.SIGTERM, -signal.SIGTERM),
        ("own-handler", signal.SIGTERM, 3),  # the program's handler, not ours
    ],
)
def test_dies_as_python_dies_and_the_capture_is_complete(
    tmp_path: Path, how: str, signum: int | None, returncode: int
) -> None:
    plain, _ = run_until_signal([sys.executable, str(ENDS), how], tmp_path, signum)
    assert plain == returncode
    output = tmp_path / "cap.msgpack"
    argv = [*MEMLENS_RUN, "-o", str(output), "--checkpoint-interval", "0", str(ENDS), how]
    tracked, stderr = run_until_signal(argv, tmp_path, signum)
    assert tracked == returncode
    assert stderr.endswith(f"memlens: wrote {output} (peak 1.0 MiB)\n")
    profile = complete_capture(output, returncode)
    assert abs(leaked_at(profile, ENDS, "alloc") - MiB) < KiB


def blocked_signals(pid: int, thread_name: str) -> set[int]:
    """The signals a named thread of pid blocks (its SigBlk in /proc)."""
    for task in Path(f"/proc/{pid}/task").iterdir():
        if (task / "comm").read_text().strip() == thread_name:
            status = (task / "status").read_text()
            mask = int(
                next(line for line in status.splitlines() if line.startswith("SigBlk:"))[7:], 16
            )
            return {bit + 1 for bit in range(64) if mask >> bit & 1}
    raise AssertionError(f"pid {pid} has no thread named {thread_name!r}")


def test_the_sampler_thread_takes_no_signal_meant_for_the_program(tmp_path: Path) -> None:
    # Else the kernel may hand it a SIGTERM, and a main thread in time.sleep() sleeps on.
    argv = [*MEMLENS_RUN, "-o", str(tmp_path / "cap.msgpack"), str(ENDS), "sleep"]
    with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as child:
        try:
            assert child.stdout is not None
            assert child.stdout.readline().startswith("ready ")
            blocked = blocked_signals(child.pid, "memlens-sampler")
            assert blocked_signals(child.pid, Path(sys.executable).name[:15]) == set()
        finally:
            child.kill()
            child.communicate()
    assert {signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGUSR1, signal.SIGCHLD} <= blocked
    assert not blocked & {signal.SIGSEGV, signal.SIGBUS, signal.SIGFPE, signal.SIGILL}


def test_keyboard_interrupt_still_runs_atexit_handlers_and_flushes(tmp_path: Path) -> None:
    code = (
        "import atexit, sys\n"
        "atexit.register(lambda: print('atexit ran'))\n"
        "sys.stdout.write('buffered')\n"
        "raise KeyboardInterrupt\n"
    )
    plain = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    tracked = subprocess.run(
        [*MEMLENS_RUN, "-o", str(tmp_path / "cap.msgpack"), "-c", code],
        capture_output=True,
        text=True,
    )
    assert plain.returncode == tracked.returncode == -signal.SIGINT
    assert plain.stdout == tracked.stdout == "bufferedatexit ran\n"


def test_sigterm_is_back_at_its_default_once_the_capture_is_written(tmp_path: Path) -> None:
    # While the program runs it sees memlens's handler (documented); its atexit handlers, which
    # run after the capture, see the default again, and a SIGTERM there kills as under python.
    code = (
        "import atexit, os, signal\n"
        "def last():\n"
        "    print(signal.getsignal(signal.SIGTERM) == signal.SIG_DFL, flush=True)\n"
        "    os.kill(os.getpid(), signal.SIGTERM)\n"
        "atexit.register(last)\n"
    )
    plain = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    tracked = run_code(code, tmp_path)
    assert (plain.returncode, plain.stdout) == (-signal.SIGTERM, "True\n")
    assert (tracked.returncode, tracked.stdout) == (plain.returncode, plain.stdout)
    complete_capture(tmp_path / "cap.msgpack", 0)


# --- --follow-fork: every child leaves its capture ---------------------------------------------


@pytest.mark.parametrize(("ending", "child_exit"), [("terminate", -signal.SIGTERM), ("close", 0)])
def test_fork_pool_workers_each_leave_their_capture(
    tmp_path: Path, ending: str, child_exit: int
) -> None:
    script = SCRIPTS / "pool_workers.py"
    output = tmp_path / "cap.msgpack"
    done = subprocess.run(
        [*MEMLENS_RUN, "-o", str(output), "--follow-fork", str(script), ending],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    pids = json.loads(done.stdout)
    workers, served = pids["workers"], pids["served"]
    assert len(workers) == 2 and set(served) <= set(workers)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [output.name] + [f"{output.name}.{pid}" for pid in workers]
    )
    total = 0
    for pid in workers:
        child = complete_capture(Path(f"{output}.{pid}"), child_exit)
        assert child.meta.pid == pid
        total += leaked_at(child, script, "work")
    assert abs(total - 40 * 2**16) < 40 * KiB  # each of the 40 tasks kept 64 KiB in its worker
    assert complete_capture(output, 0).meta.pid != workers[0]


def test_fork_child_killed_by_sigterm_leaves_its_capture(tmp_path: Path) -> None:
    script = SCRIPTS / "killed_child.py"
    output = tmp_path / "cap.msgpack"
    done = subprocess.run(
        [*MEMLENS_RUN, "-o", str(output), "--follow-fork", str(script)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    pid, status = (int(word) for word in done.stdout.split())
    assert status == -signal.SIGTERM  # it still dies of SIGTERM
    child = complete_capture(Path(f"{output}.{pid}"), -signal.SIGTERM)
    assert abs(leaked_at(child, script, "child") - 3 * MiB) < KiB


# --- what the program finds loaded ------------------------------------------------------------


MEMLENS = str(Path(sys.executable).with_name("memlens"))  # the console script people run
MODULES = "import json, sys\nprint(json.dumps(sorted(sys.modules)))\n"


def run_code(code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """`memlens run -o cap.msgpack -c code` in cwd, through the console script."""
    argv = [MEMLENS, "run", "-o", "cap.msgpack", "-c", code]
    return subprocess.run(argv, capture_output=True, text=True, cwd=cwd, timeout=60)


def modules_seen(argv: list[str], cwd: Path) -> set[str]:
    done = subprocess.run(argv, capture_output=True, text=True, cwd=cwd, timeout=60, check=True)
    # json is the script's own import: the set before it is what the program started with
    return set(json.loads(done.stdout)) - {"json", "json.decoder", "json.encoder", "json.scanner"}


@pytest.mark.parametrize("kind", ["script", "-m", "-c"])
def test_the_program_starts_with_the_modules_python_gives_it(tmp_path: Path, kind: str) -> None:
    (tmp_path / "modules.py").write_text(MODULES)
    program = {"script": ["modules.py"], "-m": ["-m", "modules"], "-c": ["-c", MODULES]}[kind]
    plain = modules_seen([sys.executable, *program], tmp_path)
    tracked = modules_seen([MEMLENS, "run", "-o", "cap.msgpack", *program], tmp_path)
    if kind == "-m":
        plain -= {"runpy"}  # python -m runs the module through runpy; memlens runs it itself
    assert tracked == plain
    assert not [name for name in tracked if name.split(".")[0] == "memlens"]


def test_a_thread_the_program_starts_does_not_bring_memlens_back(tmp_path: Path) -> None:
    code = (
        "import sys, threading\n"
        "worker = threading.Thread(target=print, args=('in thread',))\n"
        "worker.start()\n"
        "worker.join()\n"
        "print(sorted(name for name in sys.modules if name.split('.')[0] == 'memlens'))\n"
    )
    done = run_code(code, tmp_path)
    assert (done.returncode, done.stdout) == (0, "in thread\n[]\n")


def test_the_programs_own_import_of_memlens_is_fresh_and_shares_the_tracker(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "assert 'memlens' not in sys.modules\n"
        "import memlens._native\n"
        "print(memlens._native.is_tracking(), memlens.Tracker.__module__)\n"
    )
    done = run_code(code, tmp_path)
    assert (done.returncode, done.stdout) == (0, "True memlens.tracker\n"), done.stderr
    assert complete_capture(tmp_path / "cap.msgpack", 0).meta.argv == ["-c"]


@pytest.mark.parametrize("plugin", ["-p no:memlens", ""])
def test_pytest_with_warnings_as_errors_passes_under_memlens_run(
    tmp_path: Path, plugin: str
) -> None:
    # A suite that asks pytest to rewrite memlens's asserts: pytest warns (an error here) if
    # memlens is already imported. With memlens's plugin on, pytest imports memlens itself.
    (tmp_path / "pytest.ini").write_text(
        "[pytest]\n"
        f"addopts = -p no:cacheprovider {plugin}\n"
        "filterwarnings =\n"
        "    error\n"
        # this checkout's editable install imports its finder at start-up, under python too
        "    ignore:Module already imported so cannot be rewritten; _memlens_editable\n"
    )
    if plugin:
        (tmp_path / "conftest.py").write_text(
            'import pytest\n\npytest.register_assert_rewrite("memlens")\n'
        )
    (tmp_path / "test_one.py").write_text("def test_one():\n    assert 1 + 1 == 2\n")
    for argv in ([sys.executable], [MEMLENS, "run", "-o", "cap.msgpack"]):
        done = subprocess.run(
            [*argv, "-m", "pytest", "-q"], capture_output=True, text=True, cwd=tmp_path, timeout=120
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert done.stdout.splitlines()[-1].startswith("1 passed in ")
    assert complete_capture(tmp_path / "cap.msgpack", 0).meta.argv[1:] == ["-q"]


# --- exec --------------------------------------------------------------------------------------


def test_exec_writes_the_capture_before_the_program_is_replaced(tmp_path: Path) -> None:
    code = (
        "import os, sys\n"
        "data = bytearray(2**20)\n"
        "os.execv(sys.executable, [sys.executable, '-c', 'print(\"exec ran\")'])\n"
    )
    output = tmp_path / "cap.msgpack"
    done = run_code(code, tmp_path)
    assert (done.returncode, done.stdout) == (0, "exec ran\n")
    # no exit code: the process did not exit, another program took it over
    line = complete_capture(output, None).lines.line("<string>", 2)
    assert line is not None and abs(line.self.leak_bytes - MiB) < KiB


def test_an_exec_that_fails_keeps_tracking_and_the_final_capture_has_everything(
    tmp_path: Path,
) -> None:
    code = (
        "import os\n"
        "first = bytearray(2**20)\n"
        "try:\n"
        "    os.execv('/nonexistent/program', ['program'])\n"
        "except OSError:\n"
        "    pass\n"
        "second = bytearray(2**20)\n"
    )
    output = tmp_path / "cap.msgpack"
    done = run_code(code, tmp_path)
    assert done.returncode == 0, done.stderr
    profile = complete_capture(output, 0)
    for line_number in (2, 7):
        line = profile.lines.line("<string>", line_number)
        assert line is not None and abs(line.self.leak_bytes - MiB) < KiB


def test_subprocess_children_exec_without_touching_the_capture(tmp_path: Path) -> None:
    # subprocess execs in a vfork()ed child that shares our memory: only our own exec writes.
    code = (
        "import subprocess, sys\n"
        "data = bytearray(2**20)\n"
        "subprocess.run([sys.executable, '-c', 'pass'], check=True)\n"
        "more = bytearray(2**20)\n"
    )
    output = tmp_path / "cap.msgpack"
    done = run_code(code, tmp_path)
    assert done.returncode == 0, done.stderr
    profile = complete_capture(output, 0)
    line = profile.lines.line("<string>", 4)
    assert line is not None and abs(line.self.leak_bytes - MiB) < KiB


# --- hard deaths -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("how", "signum"),
    [
        ("import ctypes; ctypes.string_at(0)", signal.SIGSEGV),
        ("import os; os.abort()", signal.SIGABRT),
    ],
)
def test_a_crash_in_the_first_second_leaves_a_capture_with_what_was_allocated(
    tmp_path: Path, how: str, signum: int
) -> None:
    # Early checkpoints come at ~10, 60, 160, 360 ms: the buffer is made at ~170 ms and the
    # crash follows at once, so only the crash flush can have written it before the signal
    # kills (as it would without memlens).
    code = f"import time; time.sleep(0.17)\ndata = bytearray(10 * 2**20)\n{how}\n"
    done = run_code(code, tmp_path)
    assert done.returncode == -signum
    profile = capture.load(tmp_path / "cap.msgpack.partial")
    assert not profile.complete
    assert profile.meta.argv[0] == "-c"  # the capture names the program (python -c: "-c")
    line = profile.lines.line("<string>", 2)
    assert line is not None and abs(line.self.leak_bytes - 10 * MiB) < KiB


def test_a_program_with_its_own_fault_handler_keeps_it(tmp_path: Path) -> None:
    code = "import faulthandler; faulthandler.enable()\nimport ctypes; ctypes.string_at(0)\n"
    done = run_code(code, tmp_path)
    assert done.returncode == -signal.SIGSEGV
    assert "Fatal Python error: Segmentation fault" in done.stderr
