"""`python -m memlens run` runs a program like `python` would: argv, __main__, sys.path[0], its
exit code however it ends, a capture in every case (SIGKILL leaves CAP.partial), fork, and a
one-line error for bad input with nothing started."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from run_helpers import line_of, memlens_run

from memlens import capture
from memlens.model import Profile

SCRIPTS = Path(__file__).parent / "scripts"
MiB = 2**20
KiB = 2**10


def leaked_at(profile: Profile, script: Path, marker: str) -> int:
    stats = profile.lines.line(str(script), line_of(script, marker))
    return 0 if stats is None else stats.self.leak_bytes


EXITS = SCRIPTS / "exits.py"


# --- how the program sees itself ---------------------------------------------------------------


def test_script_sees_argv_main_and_its_directory_like_python(tmp_path: Path) -> None:
    script = SCRIPTS / "whoami.py"
    args = ["a b", "-o", "--follow-fork", "--"]  # options after the script are the script's
    done = memlens_run("-o", "cap.msgpack", str(script), *args, cwd=tmp_path)
    seen = json.loads(done.stdout)
    assert seen == {
        "argv": [str(script), *args],
        "path0": str(SCRIPTS),
        "name": "__main__",
        "file": str(script),
    }
    plain = subprocess.run(
        [sys.executable, str(script), *args], capture_output=True, text=True, cwd=tmp_path
    )
    assert json.loads(plain.stdout) == seen  # exactly what python gives it
    profile = capture.load(tmp_path / "cap.msgpack")
    assert profile.meta.argv == [str(script), *args]
    assert profile.meta.python_allocators


def test_relative_script_path_and_default_capture_name(tmp_path: Path) -> None:
    (tmp_path / "job.py").write_text("import sys\nprint(sys.argv[0], __file__)\n")
    done = memlens_run("job.py", "x", cwd=tmp_path)
    assert done.stdout == f"job.py {tmp_path / 'job.py'}\n"
    captures = list(tmp_path.glob("memlens-job.*.msgpack"))
    assert len(captures) == 1
    pid = int(captures[0].name.split(".")[1])
    profile = capture.load(captures[0])
    assert profile.meta.pid == pid and profile.meta.argv == ["job.py", "x"]
    assert done.stderr.startswith(f"memlens: wrote {captures[0].name} (peak ")


def test_dash_c_and_dash_m(tmp_path: Path) -> None:
    code = "import sys; print(sys.argv, repr(sys.path[0]), __name__)"
    done = memlens_run("-o", "c.msgpack", "-c", code, "x", "-y", cwd=tmp_path)
    assert done.stdout == "['-c', 'x', '-y'] '' __main__\n"
    assert capture.load(tmp_path / "c.msgpack").meta.argv == ["-c", "x", "-y"]

    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "__main__.py").write_text(
        "import sys\nprint(__name__, sys.argv[1:], sys.path[0])\ndata = bytearray(3 * 2**20)\n"
    )
    done = memlens_run("-o", "m.msgpack", "-m", "pkg", "arg", cwd=tmp_path)
    assert done.stdout == f"__main__ ['arg'] {tmp_path}\n"
    profile = capture.load(tmp_path / "m.msgpack")
    assert profile.meta.argv == [str(tmp_path / "pkg" / "__main__.py"), "arg"]
    data = profile.lines.line(str(tmp_path / "pkg" / "__main__.py"), 3)
    assert data is not None and abs(data.self.leak_bytes - 3 * MiB) < KiB


def test_the_memlens_console_script_runs_it_too(tmp_path: Path) -> None:
    memlens = Path(sys.executable).parent / "memlens"
    (tmp_path / "job.py").write_text("import sys\nprint(sys.argv, sys.path[0])\n")
    done = subprocess.run(
        [str(memlens), "run", "-o", "cap.msgpack", "job.py", "1"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"['job.py', '1'] {tmp_path}\n"
    assert capture.load(tmp_path / "cap.msgpack").meta.argv == ["job.py", "1"]


def test_non_daemon_threads_are_waited_for_while_tracking(tmp_path: Path) -> None:
    (tmp_path / "late.py").write_text(
        "import threading, time\n"
        "def late():\n"
        "    time.sleep(0.3)\n"
        "    global data\n"
        "    data = bytearray(5 * 2**20)\n"
        "threading.Thread(target=late, name='late-one').start()\n"
    )
    memlens_run("-o", "cap.msgpack", "late.py", cwd=tmp_path)
    profile = capture.load(tmp_path / "cap.msgpack")
    line = profile.lines.line(str(tmp_path / "late.py"), 5)
    assert line is not None and abs(line.self.leak_bytes - 5 * MiB) < KiB
    assert "late-one" in profile.threads.values()


# --- however it ends, the exit code is the program's and the capture is written ----------------


@pytest.mark.parametrize(
    ("how", "code"),
    [(["return"], 0), (["sys.exit", "7"], 7), (["raise"], 1), (["os._exit"], 3), (["sigint"], -2)],
)
def test_exit_code_and_complete_capture(tmp_path: Path, how: list[str], code: int) -> None:
    output = tmp_path / "cap.msgpack"
    done = memlens_run("-o", str(output), str(EXITS), *how, cwd=tmp_path, expect=code)
    profile = capture.load(output)
    assert profile.complete
    assert profile.meta.exit_code == code
    assert abs(leaked_at(profile, EXITS, "alloc") - 6 * MiB) < KiB
    assert not Path(f"{output}.partial").exists()
    if how[0] == "os._exit":
        assert done.stderr == ""  # os._exit ends the process at once; the hook wrote the file
    else:
        assert done.stderr.endswith(f"memlens: wrote {output} (peak 6.0 MiB)\n")
    if how[0] == "raise":
        # the traceback starts at the script, as python prints it
        assert done.stderr.startswith(
            f'Traceback (most recent call last):\n  File "{EXITS}", line {line_of(EXITS, "raise")}'
        )
        assert "ValueError: the script failed on purpose\n" in done.stderr
        assert "memlens/cli" not in done.stderr and "runpy" not in done.stderr
    if how[0] == "sigint":
        assert "KeyboardInterrupt" in done.stderr


def test_sigkill_leaves_the_last_checkpoint(tmp_path: Path) -> None:
    output = tmp_path / "cap.msgpack"
    partial = Path(f"{output}.partial")
    argv = [sys.executable, "-m", "memlens", "run", "-o", str(output)]
    argv += ["--checkpoint-interval", "0.1", str(EXITS), "sleep"]
    with subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, cwd=tmp_path) as child:
        try:
            assert child.stdout is not None and child.stdout.readline() == "allocated\n"
            started = time.monotonic()
            # wait for more than one checkpoint interval, and for a checkpoint with the buffer
            while time.monotonic() - started < 20:
                if time.monotonic() - started > 0.25 and partial.exists():
                    if capture.load(partial).totals.peak_bytes >= 6 * MiB:
                        break
                time.sleep(0.05)
        finally:
            child.send_signal(signal.SIGKILL)
            child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL
    assert not output.exists()
    profile = capture.load(partial)
    assert not profile.complete
    assert profile.meta.exit_code is None
    assert abs(leaked_at(profile, EXITS, "alloc") - 6 * MiB) < KiB


@pytest.mark.parametrize("follow", [False, True])
def test_fork_with_and_without_follow_fork(tmp_path: Path, follow: bool) -> None:
    script = SCRIPTS / "fork_child.py"
    output = tmp_path / "cap.msgpack"
    options = ["--follow-fork"] if follow else []
    done = memlens_run("-o", str(output), *options, str(script), cwd=tmp_path)
    # the child ran to its end normally: printed, and exited with its own code
    lines = done.stdout.splitlines()
    child_pid = int(next(t for t in lines if t.startswith("child ")).split()[1])
    assert lines[-1].split()[-2:] == ["child_exit", "5"]
    parent = capture.load(output)
    assert parent.complete and parent.meta.exit_code == 0
    assert abs(leaked_at(parent, script, "parent") - 4 * MiB) < KiB
    assert leaked_at(parent, script, "child") == 0
    child_capture = Path(f"{output}.{child_pid}")
    assert child_capture.exists() == follow
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [output.name] + ([child_capture.name] if follow else [])
    )
    if follow:
        child = capture.load(child_capture)
        assert child.meta.pid == child_pid and child.meta.exit_code == 5
        assert abs(leaked_at(child, script, "child") - 3 * MiB) < KiB
        assert f"memlens: wrote {child_capture} (peak " in done.stderr


# --- bad input: one line, exit 2, nothing started ----------------------------------------------


def bad_input(tmp_path: Path, *args: str) -> str:
    done = memlens_run(*args, cwd=tmp_path, expect=2)
    assert done.stdout == ""
    assert "Traceback" not in done.stderr
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("memlens run: error: ")
    # nothing ran: no capture, no checkpoint, nothing else in the directory
    assert not [p for p in tmp_path.rglob("*") if ".msgpack" in p.name]
    return done.stderr.removeprefix("memlens run: error: ").strip()


def test_missing_script(tmp_path: Path) -> None:
    assert bad_input(tmp_path, "missing.py") == "missing.py: no such file"


def test_directory_instead_of_script(tmp_path: Path) -> None:
    (tmp_path / "folder").mkdir()
    assert bad_input(tmp_path, "folder") == "folder: is a directory, not a Python script"


def test_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "broken.py").write_text("print('started')\nx = 1\ndef f(:\n    pass\n")
    message = bad_input(tmp_path, "broken.py")
    assert message == f"{tmp_path / 'broken.py'}:3: SyntaxError: invalid syntax"
    message = bad_input(tmp_path, "-c", "1 +")
    assert message.startswith("<string>:1: SyntaxError: ")
    (tmp_path / "brokenmod.py").write_text("print('started')\ndef f(:\n")
    message = bad_input(tmp_path, "-m", "brokenmod")
    assert message == f"{tmp_path / 'brokenmod.py'}:2: SyntaxError: invalid syntax"


def test_unwritable_output(tmp_path: Path) -> None:
    (tmp_path / "ok.py").write_text("print('started')\n")
    message = bad_input(tmp_path, "-o", "no/such/dir/cap.msgpack", "ok.py")
    assert message == "no/such/dir/cap.msgpack: directory 'no/such/dir' does not exist"
    (tmp_path / "folder").mkdir()
    assert bad_input(tmp_path, "-o", "folder", "ok.py").startswith("folder: is a directory")
    if os.geteuid() != 0:  # root may write anywhere
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        message = bad_input(tmp_path, "-o", "locked/cap.msgpack", "ok.py")
        assert message == "locked/cap.msgpack: directory 'locked' is not writable"


def test_output_directory_removed_during_the_run_keeps_the_capture(tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    (tmp_path / "tmp").mkdir()
    code = "import shutil; data = bytearray(2**20); shutil.rmtree('out')"
    done = memlens_run(
        "-o",
        "out/cap.msgpack",
        "-c",
        code,
        cwd=tmp_path,
        expect=2,
        env={"TMPDIR": str(tmp_path / "tmp")},
    )
    (saved,) = (tmp_path / "tmp").iterdir()
    assert done.stderr == (
        "memlens run: error: out/cap.msgpack: cannot write: No such file or directory; "
        f"capture saved as {saved}\n"
    )
    profile = capture.load(saved)
    assert profile.complete and profile.totals.peak_bytes >= 2**20


@pytest.mark.parametrize("value", ["x", "-1", "nan", "inf", "1h"])
def test_bad_checkpoint_interval(tmp_path: Path, value: str) -> None:
    (tmp_path / "ok.py").write_text("print('started')\n")
    message = bad_input(tmp_path, "--checkpoint-interval", value, "ok.py")
    assert message.startswith(f"invalid --checkpoint-interval {value!r}")


def test_other_bad_command_lines(tmp_path: Path) -> None:
    assert bad_input(tmp_path) == "no program to run: give script.py, -m module or -c code"
    assert (
        bad_input(tmp_path, "-m", "no_such_module_here") == "no module named 'no_such_module_here'"
    )
    assert bad_input(tmp_path, "--bogus", "x.py").startswith("unknown option '--bogus'")
    assert bad_input(tmp_path, "-o") == "-o needs a value"


def test_checkpoint_interval_forms_are_accepted(tmp_path: Path) -> None:
    for value in ["0", "0.5", "250ms", "2s"]:
        memlens_run("--checkpoint-interval", value, "-o", "c.msgpack", "-c", "pass", cwd=tmp_path)
        assert capture.load(tmp_path / "c.msgpack").complete


def test_help(tmp_path: Path) -> None:
    done = memlens_run("--help", cwd=tmp_path)
    assert done.stdout.startswith("usage: memlens run ")
    assert "--checkpoint-interval" in done.stdout
