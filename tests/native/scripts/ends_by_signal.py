"""Allocates 1 MiB on a marked line, then ends the way argv[1] says."""

import os
import signal
import sys
import time

data = bytearray(2**20)  # @alloc
how = sys.argv[1]
if how == "raise":
    raise KeyboardInterrupt
if how == "own-handler":  # the program's own SIGTERM handler wins, as under python
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(3))
print("ready", os.getpid(), flush=True)
time.sleep(60)
