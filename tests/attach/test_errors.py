"""Every refusal of memlens attach/detach: one clear line, exit code 2, the target untouched."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from attach_helpers import Program, interpreter, start_memlens, start_tracer
from attach_helpers import memlens as run_memlens

NOBODY = 65534
WITHOUT_PTRACE = ("setpriv", "--inh-caps=-sys_ptrace", "--bounding-set=-sys_ptrace", "--")


def refused(*args: str, prefix: tuple[str, ...] = (), **options: object) -> str:
    """The one error line of a memlens command that must fail."""
    result = run_memlens(*args, prefix=prefix, **options)
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr  # one line, never a traceback
    return lines[0]


def finishes_normally(program: Program) -> None:
    assert program.running()
    code, out, err = program.stop()
    assert (code, err) == (0, "")
    assert "done blocks=" in out and "tracked=0 straddling=0" in out


def test_no_such_pid(traceable: None) -> None:
    with open("/proc/sys/kernel/pid_max") as file:
        beyond = int(file.read()) + 1  # no process can have it
    assert refused("attach", str(beyond)) == f"memlens attach: error: no process with pid {beyond}"
    assert refused("detach", str(beyond)) == f"memlens detach: error: no process with pid {beyond}"


def test_not_cpython(traceable: None) -> None:
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        assert refused("attach", str(sleeper.pid)) == (
            f"memlens attach: error: pid {sleeper.pid} (sleep) is not a CPython process "
            "(no libpython, no Py_ symbols)"
        )
        assert sleeper.poll() is None
    finally:
        sleeper.kill()
        sleeper.wait()


@pytest.mark.parametrize("version", ["3.9", "3.10", "3.12"])
def test_other_cpython_versions(version: str, tmp_path: Path, traceable: None) -> None:
    """3.9: not supported; 3.10 (told by its file name) and 3.12 (by Py_Version): not ours."""
    ours = f"{sys.version_info[0]}.{sys.version_info[1]}"
    if ours == version:
        pytest.skip(f"this test needs a CPython other than the one running it ({version})")
    python = interpreter(version)
    if python is None:
        pytest.skip(f"no CPython {version} on this machine (PATH or pyenv)")
    program = Program(tmp_path, python)
    full = subprocess.run(
        [python, "-c", "import platform; print(platform.python_version())"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    # before 3.11 only the file name tells, without the patch level
    shown = full if tuple(map(int, version.split("."))) >= (3, 11) else version
    message = refused("attach", str(program.pid))
    if version == "3.9":
        assert message == (
            f"memlens attach: error: pid {program.pid} runs CPython 3.9, which memlens does not "
            "support (supported: 3.10, 3.11, 3.12, 3.13)"
        )
    else:
        assert message == (
            f"memlens attach: error: pid {program.pid} runs CPython {shown} but this memlens is "
            f"built for {ours}; run `memlens attach` from a memlens installed for Python {version}"
        )
    finishes_normally(program)


def test_no_debugger(program: Program) -> None:
    only_python = os.path.dirname(sys.executable)  # no gdb there
    assert refused("attach", str(program.pid), env={**os.environ, "PATH": only_python}) == (
        "memlens attach: error: no debugger: memlens attach needs gdb "
        "(Debian/Ubuntu: `apt-get install gdb`)"
    )
    finishes_normally(program)


def test_already_traced_by_a_debugger(program: Program) -> None:
    tracer = start_tracer(program.pid)
    name = Path(f"/proc/{tracer.pid}/comm").read_text().strip()
    try:
        assert refused("attach", str(program.pid)) == (
            f"memlens attach: error: pid {program.pid} is already being traced by pid "
            f"{tracer.pid} ({name}): a process has "
            "one tracer at a time; detach that debugger first"
        )
        assert program.running()
    finally:
        tracer.kill()
        tracer.communicate()
    finishes_normally(program)


def test_without_the_right_to_trace(tmp_path: Path, traceable: None) -> None:
    """Root without CAP_SYS_PTRACE (as in a container), and a target of another user."""
    if os.geteuid() != 0:
        pytest.skip("needs root, to run the target as another user (nobody)")
    # an interpreter outside root's home, which nobody can run; the same minor version as ours
    system_python = f"/usr/bin/python{sys.version_info[0]}.{sys.version_info[1]}"
    if not os.access(system_python, os.X_OK) or shutil.which("setpriv") is None:
        pytest.skip(f"needs {system_python} and setpriv")
    shared = Path(tempfile.mkdtemp(prefix="memlens-attach-test-"))  # nobody can reach it
    try:
        shared.chmod(0o777)
        program = Program(shared, system_python, user=NOBODY)
        message = refused("attach", str(program.pid), prefix=WITHOUT_PTRACE)
        assert message == (
            f"memlens attach: error: permission denied: pid {program.pid} belongs to uid "
            f"{NOBODY} and memlens runs as root without CAP_SYS_PTRACE (a container? give it "
            "--cap-add=SYS_PTRACE)"
        )
        finishes_normally(program)
    finally:
        shutil.rmtree(shared)


def test_already_tracking(program: Program, tmp_path: Path) -> None:
    capture = tmp_path / "first.msgpack"
    attach = start_memlens("attach", str(program.pid), "-o", str(capture))
    try:
        assert attach.stderr is not None
        assert attach.stderr.readline().startswith(f"memlens: tracking pid {program.pid}")
        assert refused("attach", str(program.pid), "-o", str(tmp_path / "second.msgpack")) == (
            f"memlens attach: error: pid {program.pid}: already tracking "
            f"(memlens attach, writing {capture})"
        )
    finally:
        detached = run_memlens("detach", str(program.pid))
        attach.communicate(timeout=60)
    assert detached.returncode == 0, detached.stderr
    assert program.running()
    assert refused("detach", str(program.pid)) == (
        f"memlens detach: error: pid {program.pid}: not attached (no memlens attach session)"
    )
    code, _, _ = program.stop()
    assert code == 0


def test_a_program_under_memlens_run_is_already_tracked(tmp_path: Path, traceable: None) -> None:
    from attach_helpers import GROWER

    stop = tmp_path / "stop"
    run = subprocess.Popen(
        [sys.executable, "-m", "memlens", "run", "-o", str(tmp_path / "run.msgpack"),
         str(GROWER), str(stop)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert run.stdout is not None and run.stdout.readline() == "ready\n"
        assert refused("attach", str(run.pid)) == (
            f"memlens attach: error: pid {run.pid}: already tracking "
            "(memlens run or a memlens.Tracker)"
        )
        assert refused("detach", str(run.pid)) == (
            f"memlens detach: error: pid {run.pid}: not attached (no memlens attach session)"
        )
    finally:
        stop.touch()
        run.communicate(timeout=60)
    assert run.returncode == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["attach", "12x"], "invalid pid '12x': give a process id (a positive number)"),
        (["attach"], "no pid: give the process id of a running Python program"),
        (["attach", "1", "2"], "unexpected argument '2': give one pid"),
        (
            ["attach", "--duration=soon", "1"],
            "invalid --duration 'soon': give seconds (e.g. 30, 1.5s, 500ms)",
        ),
        (["attach", "-o", "", "1"], "--output needs a file name"),
        (["attach", "--follow-fork", "1"], "unknown option '--follow-fork'"),
        (["detach", "1", "2"], "unexpected argument '2': give one pid"),
    ],
)
def test_bad_arguments(args: list[str], message: str) -> None:
    assert refused(*args) == f"memlens {args[0]}: error: {message}"
