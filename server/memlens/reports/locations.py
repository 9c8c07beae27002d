"""Where a frame's code lives, in the user's words: their own code, a library (site-packages or
the standard library) or the import system; the module a file belongs to; `file:line` text.

Captures can come from another machine or interpreter, so this works on the path text alone.
"""

from __future__ import annotations

import re

from memlens.model import Frame

USER = "user"
LIBRARY = "library"  # site-packages, dist-packages or the standard library
IMPORT_SYSTEM = "import"  # <frozen importlib._bootstrap> & co.

_SITE = re.compile(r"[/\\](?:site|dist)-packages[/\\]([^/\\]+)")
_STDLIB = re.compile(r"[/\\]lib(?:64)?[/\\]python\d+(?:\.\d+)?t?[/\\]([^/\\]+)")
_FROZEN = re.compile(r"^<frozen ([^>]+)>$")


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


def location(frame: Frame) -> str:
    return f"{frame.file}:{frame.line}"
