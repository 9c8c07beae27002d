"""`memlens lines CAP FILE [--function NAME]`: the source with its memory on every line."""

from __future__ import annotations

import argparse

from memlens.cli import CliError, command
from memlens.model import Profile
from memlens.reports import lines


def _options(p: command.Parser) -> None:
    p.add_argument(
        "file",
        metavar="FILE",
        help="a file of the capture: its path (absolute or relative) or a unique base name",
    )
    p.add_argument("--function", metavar="NAME", help="only this function's lines")


def _text(profile: Profile, args: argparse.Namespace) -> str:
    try:
        return lines.render(profile, args.file, args.function, boxed=command.boxed())
    except lines.LookupFailed as error:
        raise CliError(str(error)) from None


REPORT = command.Report(
    "lines",
    "A source file with peak and total memory (inclusive and self) on every line.",
    text=_text,
    options=_options,
)
main = REPORT.main
