"""A long-running program for the attach tests: a 1 MiB block every 20 ms, kept alive.

It notes, for each block, whether memlens tracked this process just before and just after the
allocation. Tracking starts and stops only in this (main) thread, between bytecodes, so equal
notes mean the block was made in that state; a block whose notes differ straddles an attach or
a detach. It runs until the file named by argv[1] appears (at most 60 s), then prints its tally.
"""

import os
import sys
import time

SIZE = 1 << 20
blocks = []
sure = straddling = 0


def tracking():
    native = sys.modules.get("memlens._native")
    return native is not None and native.is_tracking()


print("ready", flush=True)
deadline = time.monotonic() + 60
while not os.path.exists(sys.argv[1]) and time.monotonic() < deadline:
    before = tracking()
    block = bytearray(SIZE)  # the allocation line
    after = tracking()
    blocks.append(block)
    if before != after:
        straddling += 1
    elif before:
        sure += 1
    time.sleep(0.02)
print(f"done blocks={len(blocks)} tracked={sure} straddling={straddling}", flush=True)
