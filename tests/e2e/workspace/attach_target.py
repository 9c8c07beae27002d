"""E2E fixture for attach: 1 MiB every 50 ms on line 6, the last 40 kept (ends after 2 min)."""
import time

held = []
for _ in range(2400):
    held.append(bytearray(2**20))
    del held[:-40]
    time.sleep(0.05)
