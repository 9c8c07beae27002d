"""`memlens detach`: stop the tracking that `memlens attach` started; the capture is complete.

memlens detach PID
"""

from __future__ import annotations

import sys

from memlens.attach import client
from memlens.cli import CliError
from memlens.cli.attach import parse_pid
from memlens.units import format_bytes

USAGE = """\
usage: memlens detach PID

Stop tracking a process that `memlens attach` tracks, and write its complete capture. The
process goes on, with every hook removed."""


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        return 0 if argv else 2
    if len(argv) > 1:
        raise CliError(f"unexpected argument {argv[1]!r}: give one pid")
    pid = parse_pid(argv[0])
    try:
        result = client.detach(pid)
    except client.AttachError as error:
        raise CliError(str(error)) from None
    peak = format_bytes(int(result["peak_bytes"]))
    output = result["output"]
    print(f"memlens: detached from pid {pid}; wrote {output} (peak {peak})", file=sys.stderr)
    return 0
