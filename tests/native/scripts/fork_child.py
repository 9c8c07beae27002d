"""The parent and a forked child each allocate on a marked line; the child exits normally."""

import os
import sys

parent_data = bytearray(4 * 2**20)  # @parent
pid = os.fork()
if pid == 0:
    child_data = bytearray(3 * 2**20)  # @child
    print("child", os.getpid(), flush=True)
    sys.exit(5)
_, status = os.waitpid(pid, 0)
print("parent", os.getpid(), "child_exit", os.waitstatus_to_exitcode(status), flush=True)
