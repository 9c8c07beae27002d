"""`memlens live CAP.partial`: follow a run that another terminal started (or an attached
process) from its checkpoints, in the live terminal view; the final state when CAP appears.
`q` quits the view only: the run it follows goes on.

Also `memlens run --live` (run.py hands over to run_live): the same view over a child
`memlens run`, whose output it shows; there `q` stops the program and keeps its capture.
"""

from __future__ import annotations

import sys
import time

from memlens.cli import CliError, command


def main(argv: list[str]) -> int:
    p = command.parser(
        "live",
        "Follow a running capture (CAP.partial, or CAP) in a terminal view; q quits the view "
        "and leaves the run alone.",
    )
    args = p.parse_args(argv)
    from memlens.live.follower import Follower

    follower = Follower(args.capture)
    folder = follower.partial.parent
    if not folder.is_dir():
        raise CliError(f"{args.capture}: directory {str(folder)!r} does not exist")
    if follower.partial.is_dir() or follower.final.is_dir():
        raise CliError(f"{args.capture}: is a directory, not a capture file")
    need_terminal("memlens live")

    from memlens.live.app import LiveApp

    LiveApp(follower).run()
    return 0


def run_live(argv: list[str], output: str) -> int:
    """`memlens run --live`: the program in a child under the view; its exit status."""
    need_terminal("--live")
    from memlens.live.app import LiveApp
    from memlens.live.follower import Follower
    from memlens.live.program import Child, child_command, exit_status

    # a capture left by an earlier run with the same name is not this run's
    follower = Follower(output, since_ns=time.time_ns())
    child = Child(child_command(argv, output))
    try:
        LiveApp(follower, child).run()
    finally:
        child.kill_if_running()  # the program never outlives its view
    kept = follower.final if follower.final.exists() else follower.partial
    how = "stopped from the view" if child.stopped_by_view else f"exit {child.returncode}"
    print(f"memlens: program {how}; capture {kept}", file=sys.stderr)
    return exit_status(child.returncode)


def need_terminal(what: str) -> None:
    """The view reads keys from stdin and draws on stderr (Textual's way): both must be a tty."""
    if not (sys.stdin.isatty() and sys.stderr.isatty()):
        raise CliError(
            f"{what} needs a terminal (stdin and stderr); for a report use memlens summary"
        )
