"""E2E fixture: holds twenty mebibytes, then sleeps, so the test can watch it live and cancel it."""
import time

block = bytearray(20 * 2**20)
time.sleep(120)
