"""Byte sizes in the user's words: "10.0 MiB" out, "10 MB" / "24MiB" / "1.5 gb" in."""

from __future__ import annotations

import re

_BINARY = ("B", "KiB", "MiB", "GiB", "TiB")
_FACTORS = {
    "b": 1,
    "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
    "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40,
}  # fmt: skip
_SIZE = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*([a-zA-Z]*)\s*$")


def format_bytes(size: int | float) -> str:
    """Binary units with one decimal: 512 B, 1.5 KiB, 10.0 MiB, 2.3 GiB (keeps a minus sign)."""
    sign = "-" if size < 0 else ""
    value = float(abs(size))
    if value < 1024:
        return f"{sign}{int(value)} B"
    for unit in _BINARY[1:]:
        value /= 1024
        if value < 1024 or unit == _BINARY[-1]:
            return f"{sign}{value:.1f} {unit}"
    raise AssertionError("unreachable")


def parse_size(text: str) -> int:
    """"10 MB" -> 10_000_000, "10MiB" -> 10_485_760; decimal and binary units, any case.

    Raises ValueError with a message that says what is accepted.
    """
    match = _SIZE.match(text) if isinstance(text, str) else None
    unit = match.group(2).lower() if match else ""
    if not match or (unit and unit not in _FACTORS):
        raise ValueError(
            f"invalid size {text!r}: expected a number and a unit such as "
            "'10 MB', '512KiB' or '1.5 GiB' (B, KB, MB, GB, KiB, MiB, GiB)"
        )
    return int(float(match.group(1)) * _FACTORS[unit or "b"])
