"""Whose code a frame runs, from its file name alone: the user's, a library's (site-packages or
the standard library), the import system's, or the harness's (pytest's and memlens's own).

Captures can come from another machine or interpreter, so this works on the path text alone.
Every part of memlens that sorts frames asks here: reports, the editor and the pytest plugin.
"""

from __future__ import annotations

import functools
import re

USER = "user"
LIBRARY = "library"  # site-packages, dist-packages or the standard library
IMPORT_SYSTEM = "import"  # <frozen importlib._bootstrap> & co.

_SITE = re.compile(r"[/\\](?:site|dist)-packages[/\\]([^/\\]+)")
_STDLIB = re.compile(r"[/\\]lib(?:64)?[/\\]python\d+(?:\.\d+)?t?[/\\]([^/\\]+)")
_FROZEN = re.compile(r"^<frozen ([^>]+)>$")

# memlens's own files that show up on the stacks it records: `memlens run` below the script,
# the pytest plugin and the tracker around a test. Never what the user's program did.
_MEMLENS_FILES = (
    "/memlens/__main__.py",
    "/memlens/cli/__init__.py",
    "/memlens/cli/run.py",
    "/memlens/pytest_plugin.py",
    "/memlens/tracker.py",
)
_LAUNCHER_FILES = (*_MEMLENS_FILES, "/bin/memlens", "/runpy.py")
_HARNESS_DIRS = frozenset({"_pytest", "pytest", "pluggy", "xdist", "execnet"})


@functools.lru_cache(maxsize=4096)
def kind(file: str) -> str:
    """USER, LIBRARY or IMPORT_SYSTEM for a frame's file name."""
    frozen = _FROZEN.match(file)
    if frozen:
        return IMPORT_SYSTEM if frozen.group(1).startswith(("importlib", "zipimport")) else LIBRARY
    if _SITE.search(file):
        return LIBRARY
    stdlib = _STDLIB.search(file)
    if stdlib:
        return IMPORT_SYSTEM if stdlib.group(1) == "importlib" else LIBRARY
    return USER


def is_stdlib(file: str) -> bool:
    """The standard library's (frozen modules included), not an installed package's."""
    return kind(file) != USER and not _SITE.search(file)


def module(file: str) -> str:
    """The top-level package of a library file ("numpy", "json"), else the file itself."""
    frozen = _FROZEN.match(file)
    if frozen:
        return frozen.group(1).split(".")[0]
    match = _SITE.search(file) or _STDLIB.search(file)  # site-packages wins inside lib/python3.x
    if match:
        return _package(match.group(1))
    return file


def _package(component: str) -> str:
    return component[:-3] if component.endswith(".py") else component


def is_launcher(file: str) -> bool:
    """`memlens run`'s own frames, and runpy's under `python -m memlens run`: a capture drops
    them where they form the root of a stack."""
    return file == "<frozen runpy>" or file.replace("\\", "/").endswith(_LAUNCHER_FILES)


@functools.lru_cache(maxsize=4096)
def is_harness(file: str) -> bool:
    """pytest's, pluggy's, xdist's and memlens's own frames: how a test was called, not what
    it did."""
    path = file.replace("\\", "/")
    return bool(_HARNESS_DIRS.intersection(path.split("/")[:-1])) or path.endswith(_MEMLENS_FILES)
