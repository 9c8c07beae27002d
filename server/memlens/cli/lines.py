"""`memlens lines CAP FILE [--function NAME]`: the source with its memory on every line."""

from __future__ import annotations

from memlens.cli import CliError
from memlens.reports import command, lines


def main(argv: list[str]) -> int:
    p = command.parser("lines", "A source file with peak, total and own memory on every line.")
    p.add_argument(
        "file",
        metavar="FILE",
        help="a file of the capture: its path (absolute or relative) or a unique base name",
    )
    p.add_argument("--function", metavar="NAME", help="only this function's lines")
    args = p.parse_args(argv)
    profile = command.load(args.capture)
    try:
        text = lines.render(profile, args.file, args.function, boxed=command.boxed())
    except lines.LookupFailed as error:
        raise CliError(str(error)) from None
    command.emit(text)
    return 0
