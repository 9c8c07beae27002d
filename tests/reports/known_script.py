"""The script the real tracker runs for the report tests, and where its allocations are."""

from __future__ import annotations

import textwrap

# The script's known allocations; BIG_LINE is where 10 MiB is allocated and held at the peak.
SCRIPT = textwrap.dedent(
    """\
    import sys


    def make_big():
        return bytearray(10 * 2**20)


    def churn():
        for _ in range(200):
            junk = [0] * 1000
        return junk


    def main():
        big = make_big()
        keep = churn()
        del big
        leaked.append(bytearray(2 * 2**20))
        return keep


    leaked = []
    main()
    sys.exit(3)
    """
)
BIG_LINE = 5  # `return bytearray(10 * 2**20)` in make_big
BIG_CALL_LINE = 15  # `big = make_big()` in main
LEAK_LINE = 18
MIB = 2**20
