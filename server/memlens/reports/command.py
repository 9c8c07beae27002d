"""What the report commands (`memlens summary`, `table`, ...) share: an argument parser whose
errors are one line (exit 2 via CliError), loading the capture, and writing to stdout or a file."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any, NoReturn

from memlens import capture
from memlens.cli import CliError
from memlens.files import drop_stdout, reason, write_atomically
from memlens.model import Profile
from memlens.reports import terminal

# --total/--leaks/--temporary -> the metric of the bytes shown
KIND_FLAGS = {"total": "alloc_bytes", "leaks": "leak_bytes", "temporary": "temp_bytes"}


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise CliError(message)


def parser(command: str, description: str) -> Parser:
    p = Parser(prog=f"memlens {command}", description=description)
    p.add_argument("capture", metavar="CAP", help="a capture written by `memlens run`")
    return p


def add_kind_flags(p: argparse.ArgumentParser, what: str) -> None:
    """--total / --leaks / --temporary (default: at the peak)."""
    group = p.add_mutually_exclusive_group()
    group.add_argument(
        "--total",
        dest="kind",
        action="store_const",
        const="total",
        help=f"{what} of all memory allocated over the run",
    )
    group.add_argument(
        "--leaks",
        dest="kind",
        action="store_const",
        const="leaks",
        help=f"{what} of memory still live when tracking stopped",
    )
    group.add_argument(
        "--temporary",
        dest="kind",
        action="store_const",
        const="temporary",
        help=f"{what} of temporary allocations (freed right away)",
    )
    p.set_defaults(kind="peak")


def _at_least(minimum: int) -> Callable[[str], int]:
    """An argparse type: a whole number, `minimum` or more."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected {minimum} or more, got {value}")
        return value

    return parse


positive = _at_least(1)
count = _at_least(0)  # `--limit 0`: no limit


def load(path: str) -> Profile:
    """The capture every report command reads: the one place a bad capture (or a missing or
    unreadable file) becomes one line on stderr and exit status 2, via CliError."""
    try:
        return capture.load(path)
    except capture.CaptureError as error:
        raise CliError(str(error)) from None
    except OSError as error:  # capture.load names its own; this is a last guard
        raise CliError(f"{path}: {reason(error)}") from None


def boxed() -> bool:
    return terminal.is_tty(sys.stdout)


def emit(text: str) -> None:
    """Print, quietly stopping if the reader went away (`memlens table CAP | head`)."""
    try:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
        sys.stdout.flush()
    except BrokenPipeError:
        drop_stdout()


def emit_json(value: Any) -> None:
    emit(json.dumps(value, indent=2))


def write_file(path: str, text: str) -> None:
    """Write a report file whole or not at all."""
    try:
        write_atomically(path, text.encode("utf-8"))
    except OSError as error:
        raise CliError(f"cannot write {path}: {reason(error)}") from None
