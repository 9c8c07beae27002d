"""memlens: a memory profiler for Python that lives in the editor.

`memlens.Tracker` records every allocation of a block of code; `memlens.load` reads a capture
into a `Profile`, whose `lines` index gives per-line peak and total memory.
"""

from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["CaptureError", "Profile", "Tracker", "__version__", "load", "snapshot"]

# Not typing's TYPE_CHECKING: `memlens run` imports this package, and the program it runs must
# start with the modules python gives it (typing loads a dozen more).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from memlens.capture import CaptureError, load
    from memlens.model import Profile
    from memlens.tracker import Tracker


def snapshot(label: str) -> bool:
    """Record an object snapshot (live objects by type and line, and who holds the biggest
    groups) under `label` in the running tracker's capture. Does nothing, and returns False,
    when no tracker runs in this process."""
    if not isinstance(label, str):
        raise TypeError(f"a snapshot label is a str, not {type(label).__name__}")
    from memlens import _native

    if not _native.is_tracking():
        return False
    from memlens import objects

    return objects.take(label)


def __getattr__(name: str) -> Any:
    # Lazy: `memlens run` must start fast, and the model needs numpy.
    if name == "Tracker":
        from memlens.tracker import Tracker

        return Tracker
    if name in ("load", "CaptureError"):
        from memlens import capture

        return getattr(capture, name)
    if name == "Profile":
        from memlens.model import Profile

        return Profile
    raise AttributeError(f"module 'memlens' has no attribute {name!r}")
