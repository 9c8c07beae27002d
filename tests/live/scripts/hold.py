"""Holds known amounts at known lines, prints, then waits until the file argv[1] exists
(at most 20 s), so a test decides when it ends."""

import os
import sys
import threading
import time

held = []


def work():
    held.append(bytearray(5 * 1024 * 1024))  # WORKER LINE


keep = [str(i) for i in range(20000)]  # MANY LINE
data = bytearray(30 * 1024 * 1024)  # BIG LINE
worker = threading.Thread(target=work, name="worker")
worker.start()
worker.join()
print("allocated 30 MiB", flush=True)
deadline = time.monotonic() + 20
while not os.path.exists(sys.argv[1]) and time.monotonic() < deadline:
    time.sleep(0.05)
