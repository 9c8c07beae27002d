"""For the attach tests: a program that forks a child, which exits normally, while attached.

Prints "ready", then allocates a little every 20 ms; once the file argv[1] + ".fork" appears it
forks once (the child exits at once with status 0, running its exit handlers) and prints
"forked"; it ends when the file argv[1] appears.
"""

import os
import sys
import time

blocks = []
forked = False
print("ready", flush=True)
while not os.path.exists(sys.argv[1]):
    blocks.append(bytearray(4096))
    if not forked and os.path.exists(sys.argv[1] + ".fork"):
        forked = True
        child = os.fork()
        if child == 0:
            sys.exit(0)
        os.waitpid(child, 0)
        print("forked", flush=True)
    time.sleep(0.02)
print("done", flush=True)
