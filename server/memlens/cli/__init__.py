"""The `memlens` command: one module per subcommand, imported only when it runs.

Every subcommand module has `main(argv: list[str]) -> int`. Errors the user can fix raise
`CliError` and end as one line on stderr with exit code 2, never a traceback; the report
commands read captures through `cli.command.load`, which turns a bad one into a CliError.
"""

from __future__ import annotations

import importlib
import sys

from memlens.files import drop_stdout

COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("memlens.cli.run", "run a script under the tracker and write a capture"),
    "summary": ("memlens.cli.summary", "peak, totals and the top lines at peak"),
    "table": ("memlens.cli.table", "one row per source line (peak, total, lost at exit, ...)"),
    "tree": ("memlens.cli.tree", "the call tree of the biggest stacks at peak"),
    "stats": ("memlens.cli.stats", "totals, size histogram, domains, threads, modules"),
    "lines": ("memlens.cli.lines", "a source file with peak and total memory on every line"),
    "flamegraph": ("memlens.cli.flamegraph", "a self-contained HTML flame graph with timeline"),
    "diff": ("memlens.cli.diff", "what changed between two runs, or two snapshots of one"),
    "types": ("memlens.cli.types", "live Python objects by type, their lines and holders"),
    "json": ("memlens.cli.json_report", "the per-line index as JSON"),
    "live": ("memlens.cli.live", "follow a running capture (CAP.partial) in a terminal view"),
    "attach": ("memlens.cli.attach", "start tracking a running Python process (needs gdb)"),
    "detach": ("memlens.cli.detach", "stop tracking an attached process; write its capture"),
    "serve": ("memlens.cli.serve", "start the language server (stdio or --tcp)"),
}


class CliError(Exception):
    """A problem the user can fix; printed as one line, exit code 2."""


def usage() -> str:
    width = max(map(len, COMMANDS))
    rows = "\n".join(f"  {name:<{width}}  {text}" for name, (_, text) in COMMANDS.items())
    return (
        f"usage: memlens <command> [options]\n\ncommands:\n{rows}\n\n"
        "`memlens <command> --help` for one command's options."
    )


def main(argv: list[str] | None = None) -> int:
    try:
        return _main(sys.argv[1:] if argv is None else argv)
    except BrokenPipeError:  # the reader went away: no traceback
        drop_stdout()
        return 141  # what a shell reports for SIGPIPE


def _main(args: list[str]) -> int:
    if not args or args[0] in ("-h", "--help", "help"):
        print(usage())
        return 0 if args else 2
    if args[0] in ("-V", "--version"):
        from memlens import __version__

        print(f"memlens {__version__}")
        return 0
    name, rest = args[0], args[1:]
    if name not in COMMANDS:
        print(f"memlens: error: unknown command {name!r}\n\n{usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[name][0])
    try:
        return int(module.main(rest) or 0)
    except CliError as error:
        print(f"memlens {name}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
