"""What the report commands (`memlens summary`, `table`, ...) share: an argument parser whose
errors are one line (exit 2 via CliError), one flag per measure, loading the capture, writing to
stdout or a file, and `Report`, the table each report command is a row of."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NoReturn

from memlens import capture, measures
from memlens.cli import CliError
from memlens.files import drop_stdout, reason, write_atomically
from memlens.model import Profile
from memlens.reports import terminal


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise CliError(message)


def parser(command: str, description: str) -> Parser:
    p = Parser(prog=f"memlens {command}", description=description)
    p.add_argument("capture", metavar="CAP", help="a capture written by `memlens run`")
    return p


def add_limit(p: argparse.ArgumentParser, default: int, rows: str = "rows") -> None:
    """`--limit N`: at most N rows; see limits() for what each output shows without it."""
    p.add_argument(
        "--limit",
        type=count,
        metavar="N",
        help=f"at most N {rows} (default {default} on screen, all in --json; 0: all)",
    )


def limits(limit: int | None, default: int) -> tuple[int | None, int | None]:
    """(rows in JSON, rows on screen) for `--limit`: 0 lifts both; none given, JSON has all and
    the screen `default`. None is no limit."""
    given = None if limit == 0 else limit
    return given, default if limit is None else given


def add_how_many(p: argparse.ArgumentParser, flag: str, default: int, what: str) -> None:
    """`flag N`: a count of 1 or more, `default` if not given."""
    p.add_argument(
        flag, type=positive, default=default, metavar="N", help=f"{what} (default {default})"
    )


def add_measure_flags(p: argparse.ArgumentParser, what: str) -> None:
    """One flag per measure (--peak, --total, --leaks, ...; default --peak): sets `measure`."""
    group = p.add_mutually_exclusive_group()
    for measure in measures.MEASURES:
        group.add_argument(
            f"--{measure.name}",
            dest="measure",
            action="store_const",
            const=measure,
            help=f"{what} of {measure.help}",
        )
    p.set_defaults(measure=measures.DEFAULT)


@dataclass(frozen=True)
class Report:
    """A report command: `memlens NAME CAP [options]`, reading one capture."""

    name: str
    description: str
    text: Callable[[Profile, argparse.Namespace], str]  # what it prints (or writes, then says)
    json: Callable[[Profile, argparse.Namespace], Any] | None = None  # with --json
    json_help: str = ""
    measure_flags: str = ""  # "rows": one flag per measure, "rows of memory live at the peak"
    options: Callable[[Parser], None] | None = None
    errors: tuple[type[Exception], ...] = ()  # raised by text/json: one line, exit status 2

    def main(self, argv: list[str]) -> int:
        p = parser(self.name, self.description)
        if self.measure_flags:
            add_measure_flags(p, self.measure_flags)
        if self.options:
            self.options(p)
        if self.json:
            p.add_argument("--json", action="store_true", help=self.json_help)
        args = p.parse_args(argv)
        profile = load(args.capture)
        try:
            if self.json and args.json:
                emit_json(self.json(profile, args))
                return 0
            text = self.text(profile, args)
        except self.errors as error:
            raise CliError(str(error)) from None
        if text:  # empty: the report went to a file (`json -o`)
            emit(text)
        return 0


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
