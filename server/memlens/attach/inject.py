"""Schedule Python code in another process with gdb, at a safe point, and let go at once.

gdb stops the process at an arbitrary instruction, where running Python (or even malloc) is not
safe. So it only calls two functions there that are safe anywhere: `mmap` (a system call; no
lock) to get a page for the code's text, and `Py_AddPendingCall(PyRun_SimpleString, page)`,
which CPython documents as callable from any thread without the GIL. Then gdb detaches; the
process goes on, and its main thread runs the code at its next check between bytecodes, with
the GIL held, as it runs signal handlers. `PyRun_SimpleString(const char *)` has the pending
call's `int (*)(void *)` shape. The page (one per request, a few KiB) stays mapped: the code
has no way to know when CPython is done with its text. The stop is a pending call of
`PyObject_IsTrue` on the agent's trigger instead, which compiles nothing (see agent.py).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess

from memlens.attach.target import AttachError, ptrace_refused

GDB_TIMEOUT = 60.0  # seconds; gdb reads the target's symbols, which takes about a second
PAGE = 4096
MAP_PRIVATE_ANONYMOUS = 0x22
PROT_READ_WRITE = 3


def find_debugger() -> str:
    gdb = shutil.which("gdb")
    if gdb is None:
        raise AttachError(
            "no debugger: memlens attach needs gdb (Debian/Ubuntu: `apt-get install gdb`)"
        )
    return gdb


def schedule(pid: int, code: str, workdir: str) -> None:
    """Have pid's main thread run `code` (Python source) soon; AttachError if gdb cannot."""
    payload = code.encode() + b"\0"
    size = -(-len(payload) // PAGE) * PAGE
    payload_path = write(workdir, "payload.bin", payload)
    run_gdb(
        pid,
        workdir,
        f"""\
set $memlens_page = (char *) (void *) mmap(0, {size}, {PROT_READ_WRITE}, {MAP_PRIVATE_ANONYMOUS}, -1, 0)
if $memlens_page == (char *) -1
  echo memlens-error mmap failed\\n
else
  restore {payload_path} binary $memlens_page
  printf "memlens-scheduled %d\\n", (int) Py_AddPendingCall((void *) PyRun_SimpleString, $memlens_page)
end
""",  # noqa: E501
    )


def pull_trigger(pid: int, trigger: int, mailbox: int, message: str, workdir: str) -> None:
    """Write message into the agent's mailbox and have the main thread call its trigger.

    `PyObject_IsTrue(trigger)` has the pending call's shape and allocates nothing before the
    trigger's `__bool__` runs (agent.py); both addresses come from the agent's registry entry.
    """
    payload_path = write(workdir, "mailbox.bin", message.encode() + b"\0")
    run_gdb(
        pid,
        workdir,
        f"""\
restore {payload_path} binary {mailbox}
printf "memlens-scheduled %d\\n", (int) Py_AddPendingCall((void *) PyObject_IsTrue, (void *) {trigger})
""",  # noqa: E501
    )


def write(workdir: str, name: str, data: bytes) -> str:
    path = os.path.join(workdir, name)
    with open(path, "wb") as file:
        file.write(data)
    return path


def run_gdb(pid: int, workdir: str, script: str) -> None:
    """Run a gdb script attached to pid, then let go; AttachError with the cause if it fails."""
    gdb = find_debugger()
    script_path = write(workdir, "request.gdb", script.encode())
    command = [
        gdb, "-nx", "-batch", "-q", "--readnever",
        # exported symbols are all it needs: no debug info (--readnever: 1.8 s -> 0.5 s), no
        # network symbol lookups, no scripts shipped with the target's libraries
        "-iex", "set debuginfod enabled off", "-iex", "set auto-load off",
        # a signal arriving during a call made by gdb unwinds that call instead of stopping there
        "-iex", "set unwindonsignal on",
        "-p", str(pid), "-x", script_path,
    ]  # fmt: skip
    process = subprocess.Popen(
        command,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # Ctrl-C in the attaching terminal must not reach gdb mid-call
    )
    try:
        out, err = process.communicate(timeout=GDB_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        # gdb's attach stopped the process with SIGSTOP; its death may leave it stopped.
        os.kill(pid, signal.SIGCONT)
        raise AttachError(f"gdb did not finish within {GDB_TIMEOUT:.0f} s (pid {pid})") from None
    check_result(pid, out, err)


def check_result(pid: int, out: str, err: str) -> None:
    for line in out.splitlines():
        if line.startswith("memlens-scheduled "):
            if line.split()[1] != "0":
                raise AttachError(f"pid {pid}: CPython's pending-call queue is full; try again")
            return
    if "Operation not permitted" in err:
        raise AttachError(ptrace_refused(pid))
    if "No such process" in err:
        raise AttachError(f"no process with pid {pid}")
    if "memlens-error mmap failed" in out:
        raise AttachError(f"pid {pid}: could not map a page for the request (out of memory?)")
    if "No symbol" in err:
        raise AttachError(f"pid {pid} is not a CPython process (gdb: {last_line(err)})")
    raise AttachError(f"gdb could not schedule the request in pid {pid}: {last_line(err or out)}")


def last_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip() and "warning:" not in line]
    return lines[-1].strip() if lines else "no output"
