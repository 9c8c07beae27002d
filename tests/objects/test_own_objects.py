"""memlens never counts itself in snapshots: a program that imports memlens and calls
memlens.snapshot sees its own objects, not memlens's (its modules, functions, code, spec)."""

from __future__ import annotations

import sys
from pathlib import Path

from memlens import capture
from memlens.reports import types as object_types

from . import workloads


def test_a_snapshot_leaves_out_memlens_itself(tmp_path: Path) -> None:
    script = tmp_path / "app.py"
    script.write_text(
        'import memlens\nheld = [bytearray(1000) for _ in range(10)]\nmemlens.snapshot("here")\n'
    )
    profile = capture.load(workloads.memlens_run(script))
    here = object_types.snapshot_at(profile, "here")
    found = here.by_type()
    # before: memlens.snapshot (function) <- module memlens, its code, module, spec and loader
    for own in ("function", "code", "module", "_frozen_importlib.ModuleSpec", "cell"):
        assert own not in found, f"{own} {found[own]}"
    assert not [h.text for h in here.holders if "memlens" in h.text]
    assert found["bytearray"] == (10, 10 * sys.getsizeof(bytearray(1000)))
