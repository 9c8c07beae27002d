"""Byte sizes in the user's words: "10.0 MiB" out; "10 MB" / "24MiB" / "1.5 gb" in.

The one size parser of the package. KB, MB, GB, TB and PB are binary (1 MB = 1,048,576 B), as
pytest-memray and Memray read them and as their users chose their limits; KiB .. PiB say the same
explicitly. Units are matched in any case; a bare number is a count of bytes.
"""

from __future__ import annotations

import re

_BINARY = ("B", "KiB", "MiB", "GiB", "TiB")
_PREFIXES = "kmgtp"
_FACTORS = {"b": 1} | {
    prefix + suffix: 1024 ** (power + 1)
    for power, prefix in enumerate(_PREFIXES)
    for suffix in ("b", "ib")
}
_SIZE = re.compile(r"^\s*\+?(\d+(?:\.\d*)?|\.\d+)\s*([a-zA-Z]*)\s*$")
ACCEPTED = "a number and a unit, such as '10 MB', '512KiB' or '1.5 GB' (B, KB..PB, KiB..PiB)"


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


def parse_size(value: object) -> int:
    """ "10 MB" -> 10_485_760, "10 MiB" -> the same, "512" and 512 -> 512 bytes.

    ValueError with a message that says what is accepted.
    """
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 0:
            raise ValueError(f"invalid size {value!r}: a size cannot be negative")
        return value
    match = _SIZE.match(value) if isinstance(value, str) else None
    if match is None:
        raise ValueError(f"invalid size {value!r}: expected {ACCEPTED}")
    unit = match.group(2).lower() or "b"
    if unit not in _FACTORS:
        raise ValueError(
            f"invalid size {value!r}: unknown unit {match.group(2)!r}; expected {ACCEPTED}"
        )
    return int(float(match.group(1)) * _FACTORS[unit])
