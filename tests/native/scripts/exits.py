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
    os.kill(os.getpid(), signal.SIGINT)
    time.sleep(10)
elif how == "sleep":
    print("allocated", flush=True)
    time.sleep(60)
