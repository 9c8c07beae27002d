"""Attach the tracker to a running CPython process (`memlens attach PID`), and detach it.

client.py is the attacher's side, target.py and elf.py its checks, inject.py the debugger;
bootstrap.py and agent.py run inside the target. This package imports nothing, so that the
target, which imports `memlens.attach.agent`, loads only what it uses.
"""
