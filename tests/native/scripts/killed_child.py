"""A forked child allocates and sleeps; the parent kills it with SIGTERM 0.3 s after the fork."""

import os
import signal
import time

pid = os.fork()
if pid == 0:
    data = bytearray(3 * 2**20)  # @child
    time.sleep(30)
    os._exit(0)
time.sleep(0.3)
os.kill(pid, signal.SIGTERM)
_, status = os.waitpid(pid, 0)
print(pid, os.waitstatus_to_exitcode(status), flush=True)
