"""Exported symbols of an ELF file on disk: which CPython a process runs, without touching it.

`Py_Version` (CPython 3.11+) is a `const unsigned long` in read-only data, so its value can be
read from the file itself; no ptrace, no debugger, nothing the target could notice. Only 64-bit
little-endian objects are read (the platforms memlens supports).
"""

from __future__ import annotations

import struct
from typing import BinaryIO

SHT_DYNSYM = 11
PT_LOAD = 1


class ElfError(Exception):
    """Not an ELF file memlens can read."""


def _read(file: BinaryIO, offset: int, size: int) -> bytes:
    file.seek(offset)
    data = file.read(size)
    if len(data) != size:
        raise ElfError("truncated ELF file")
    return data


class ElfSymbols:
    """The dynamic symbols of one ELF object: name -> (virtual address, size)."""

    def __init__(self, path: str) -> None:
        self.path = path
        with open(path, "rb") as file:
            header = _read(file, 0, 64)
            if header[:4] != b"\x7fELF" or header[4] != 2 or header[5] != 1:
                raise ElfError(f"{path}: not a 64-bit little-endian ELF file")
            phoff, shoff = struct.unpack_from("<QQ", header, 32)
            phentsize, phnum, shentsize, shnum = struct.unpack_from("<HHHH", header, 54)
            self.segments = [
                struct.unpack_from("<IIQQQQ", _read(file, phoff + i * phentsize, 40))
                for i in range(phnum)
            ]
            sections = [
                struct.unpack_from("<IIQQQQIIQQ", _read(file, shoff + i * shentsize, 64))
                for i in range(shnum)
            ]
            self.symbols = self._dynamic_symbols(file, sections)

    @staticmethod
    def _dynamic_symbols(
        file: BinaryIO, sections: list[tuple[int, ...]]
    ) -> dict[str, tuple[int, int]]:
        symbols: dict[str, tuple[int, int]] = {}
        for _, kind, _, _, offset, size, link, _, _, entsize in sections:
            if kind != SHT_DYNSYM or not entsize:
                continue
            strings = _read(file, sections[link][4], sections[link][5])
            table = _read(file, offset, size)
            for start in range(0, size - entsize + 1, entsize):
                name_at, _, _, section, value, length = struct.unpack_from("<IBBHQQ", table, start)
                if section == 0:  # undefined here: imported from another object
                    continue
                name = strings[name_at : strings.index(b"\0", name_at)].decode(errors="replace")
                symbols[name] = (value, length)
        return symbols

    def read(self, name: str) -> bytes | None:
        """The bytes of a defined data symbol, from the file (None if absent or not in the file)."""
        if name not in self.symbols:
            return None
        address, size = self.symbols[name]
        for kind, _, offset, vaddr, _, filesz in self.segments:
            if kind == PT_LOAD and vaddr <= address and address + size <= vaddr + filesz:
                with open(self.path, "rb") as file:
                    return _read(file, offset + address - vaddr, size)
        return None
