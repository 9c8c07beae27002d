"""`memlens attach`: start tracking in a running CPython process, until detach.

    memlens attach PID [-o CAP] [--duration S] [--no-python-allocators] [--checkpoint-interval S]

Waits while the process is tracked: the end of --duration or Ctrl-C detaches; `memlens detach
PID` from elsewhere, or the process's exit, ends the wait too. The capture is complete in each
case (a process killed while attached leaves its last checkpoint, CAP.partial).
"""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

from memlens.attach import client
from memlens.cli import CliError
from memlens.cli.run import check_output, option_value, parse_interval

USAGE = """\
usage: memlens attach PID [-o CAP] [--duration S] [--no-python-allocators]
                      [--checkpoint-interval S]

Start tracking a running CPython process (needs gdb); stop with Ctrl-C, at the end of
--duration, or with `memlens detach PID`. The process goes on unharmed.

options:
  -o, --output CAP         capture file (default: memlens-<script>.<pid>.msgpack here)
  --duration S             detach after S seconds (e.g. 30, 1.5s, 500ms)
  --no-python-allocators   track only malloc/mmap, not Python objects (fastest)
  --checkpoint-interval S  write CAP.partial every S seconds while attached (0 = never)
  -h, --help               show this help"""


class Options:
    def __init__(self) -> None:
        self.pid = 0
        self.output: str | None = None
        self.duration: float | None = None
        self.python_allocators = True
        self.checkpoint_interval = 1.0


def parse_pid(text: str) -> int:
    if not text.isdigit() or int(text) == 0:
        raise CliError(f"invalid pid {text!r}: give a process id (a positive number)")
    return int(text)


def parse_args(argv: list[str]) -> Options | None:
    """The options and the pid; None for --help."""
    options, rest, pids = Options(), list(argv), []
    while rest:
        arg = rest.pop(0)
        option = arg.partition("=")[0] if arg.startswith("--") else arg
        if arg in ("-h", "--help"):
            return None
        if arg == "--no-python-allocators":
            options.python_allocators = False
        elif option in ("-o", "--output", "--duration", "--checkpoint-interval"):
            set_option(options, option, option_value(arg, rest))
        elif arg.startswith("-"):
            raise CliError(f"unknown option {arg!r}")
        else:
            pids.append(arg)
    if not pids:
        raise CliError("no pid: give the process id of a running Python program")
    if len(pids) > 1:
        raise CliError(f"unexpected argument {pids[1]!r}: give one pid")
    options.pid = parse_pid(pids[0])
    return options


def set_option(options: Options, option: str, value: str) -> None:
    if option == "--duration":
        try:
            options.duration = parse_interval(value)
        except CliError:
            message = f"invalid --duration {value!r}: give seconds (e.g. 30, 1.5s, 500ms)"
            raise CliError(message) from None
    elif option == "--checkpoint-interval":
        options.checkpoint_interval = parse_interval(value)
    elif not value:
        raise CliError("--output needs a file name")
    else:
        options.output = value


def default_output(pid: int) -> str:
    """memlens-<script>.<pid>.msgpack, named after the program like `memlens run` does."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as file:
            argv = [part.decode(errors="replace") for part in file.read().split(b"\0") if part]
    except OSError:
        argv = []
    scripts = [arg for arg in argv[1:] if arg.endswith(".py")]
    name = os.path.basename(scripts[0])[:-3] if scripts else "attach"
    return f"memlens-{name}.{pid}.msgpack"


def main(argv: list[str]) -> int:
    options = parse_args(argv)
    if options is None:
        print(USAGE)
        return 0
    output = options.output or default_output(options.pid)
    check_output(output)
    with ctrl_c_deferred() as interrupted:
        try:
            session = client.attach(
                options.pid,
                output,
                python_allocators=options.python_allocators,
                checkpoint_interval=options.checkpoint_interval,
            )
        except client.AttachError as error:
            raise CliError(str(error)) from None
    try:
        if interrupted:  # Ctrl-C while attaching: the target tracks now, so detach at once
            options.duration = 0.0
        return follow(session, options)
    finally:
        session.close()


@contextmanager
def ctrl_c_deferred() -> Iterator[list[int]]:
    """Hold Ctrl-C while the agent is injected: an attach cut halfway would leave the target
    tracking with nobody to detach it. The list yielded is non-empty if Ctrl-C came."""
    interrupted: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: interrupted.append(signum))
    try:
        yield interrupted
    finally:
        signal.signal(signal.SIGINT, previous)


def follow(session: client.Attached, options: Options) -> int:
    partial = f" (checkpoints in {session.output}.partial)" if options.checkpoint_interval else ""
    until = "" if options.duration is None else f" for {options.duration:g} s"
    print(
        f"memlens: tracking pid {session.pid} (CPython {session.python}){until}, writing "
        f"{session.output}{partial}; Ctrl-C or `memlens detach {session.pid}` stops",
        file=sys.stderr,
    )
    deadline = None if options.duration is None else time.monotonic() + options.duration
    try:
        result = client.wait_stopped(session, deadline)
    except KeyboardInterrupt:
        result = None
    if result is None:  # our turn to stop it
        try:
            result = dict(client.detach(session.pid), how="detached")
        except client.AttachError as error:
            raise CliError(str(error)) from None
    return report(session, result)


def report(session: client.Attached, result: dict[str, object]) -> int:
    from memlens.units import format_bytes

    if result["how"] == "vanished":
        print(
            f"memlens: pid {session.pid} ended without a word (killed?); its last checkpoint "
            f"is {session.output}.partial",
            file=sys.stderr,
        )
        return 1
    if not result["ok"]:
        print(f"memlens attach: error: {result['error']}", file=sys.stderr)
        return 2
    peak = format_bytes(int(str(result["peak_bytes"])))
    cause = "exited" if result["how"] == "exited" else "detached"
    print(f"memlens: {cause}; wrote {result['output']} (peak {peak})", file=sys.stderr)
    return 0
