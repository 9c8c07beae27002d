"""Ends the way argv[1] says, after allocating 6 MiB on a marked line."""

import os
import signal
import sys
import time

data = bytearray(6 * 2**20)  # @alloc
how = sys.argv[1]
if how == "return":
    pass
elif how == "sys.exit":
    sys.exit(int(sys.argv[2]))
elif how == "raise":
    raise ValueError("the script failed on purpose")  # @raise
elif how == "os._exit":
    os._exit(3)
elif how == "sigint":
    # As in a terminal: a job a shell started in the background inherits SIGINT ignored, and
    # then python (and memlens run, like it) never raises KeyboardInterrupt.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    os.kill(os.getpid(), signal.SIGINT)
    time.sleep(10)
elif how == "sleep":
    print("allocated", flush=True)
    time.sleep(60)
