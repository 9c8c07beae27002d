"""Which private directories the next server start removes: only dead servers' own ones."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from memlens.lsp import private_dirs


def dead_pid() -> int:
    child = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                           capture_output=True, text=True, check=True)  # fmt: skip
    return int(child.stdout)  # exited and reaped: nothing has this pid now (barring reuse)


def test_only_dead_servers_directories_go(tmp_path: Path) -> None:
    dead = dead_pid()
    stale = tmp_path / f"memlens-lsp-{dead}-abc123"
    live = tmp_path / f"memlens-lsp-{os.getpid()}-def456"
    other = tmp_path / f"memlens-{dead}-xyz"  # not a server's (another part of memlens)
    a_file = tmp_path / f"memlens-lsp-{dead}-file"
    a_link = tmp_path / f"memlens-lsp-{dead}-link"
    for directory in (stale, live, other):
        directory.mkdir()
        (directory / "capture.msgpack").write_bytes(b"x")
    a_file.write_bytes(b"x")
    a_link.symlink_to(live)
    assert private_dirs.remove_stale(str(tmp_path)) == [stale]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        p.name for p in (live, other, a_file, a_link)
    )
    assert (live / "capture.msgpack").exists()  # a link is never followed


def test_a_new_directory_is_named_after_this_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr(tempfile, "tempdir", None)  # read TMPDIR again
    created = private_dirs.create()
    assert created.parent == tmp_path and created.name.startswith(f"memlens-lsp-{os.getpid()}-")
    assert created.stat().st_mode & 0o777 == 0o700
