"""The frame reader on its own, fed the same broken frames as test_wire.py in every chunking:
one byte at a time, 7 bytes, and whole; what it hands on must not depend on how bytes arrive."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from test_wire import FRAMINGS, SUMMARY_2, length
from wire import frame

from memlens.lsp import transport

SUMMARY = {"jsonrpc": "2.0", "id": 1, "method": "memlens/summary"}
NEXT = {"jsonrpc": "2.0", "id": 2, "method": "memlens/summary"}
# What each case hands on, in order: JSON values, or the parse problem of a broken body.
HANDED_ON: dict[str, list[Any]] = {
    "too short": ["the message is not valid JSON (at byte 38)", NEXT],
    "too long": [SUMMARY, NEXT],
    "far too long": [SUMMARY, NEXT],
    "zero": [NEXT],
    "LF only": [SUMMARY, NEXT],
    "not a number": [NEXT],
    "duplicate, different": [NEXT],
    "duplicate, equal": [SUMMARY, NEXT],
    "10^11": [NEXT],
    "10^30": [NEXT],
    "64 MiB + 1, sent": [NEXT],
    "junk": [NEXT],
    "no length": [NEXT],
}


def read(data: bytes, size: int) -> tuple[list[Any], str, int]:
    """What the reader hands on from `data` arriving in chunks of `size`, why it stopped, and
    how many broken frames it logged."""
    chunks = iter([data[i : i + size] for i in range(0, len(data), size)] + [b""])
    handed: list[Any] = []

    async def next_chunk() -> bytes:
        return next(chunks)

    def receive(message: transport.Message) -> None:
        handed.append(message.problem or message.value)

    async def run() -> tuple[str, int]:
        reader = transport.FrameReader(next_chunk)
        while True:
            try:
                message = await reader.next_message()
            except transport.ConnectionClosed as closed:
                return str(closed), reader.problems
            if message is not None:
                receive(message)

    reason, problems = asyncio.run(run())
    return handed, reason, problems


@pytest.mark.parametrize("size", [1, 7, 1 << 30])
@pytest.mark.parametrize("case", [c for c in FRAMINGS if c != "64 MiB + 1, sent"])
def test_every_chunking_hands_on_the_same(case: str, size: int) -> None:
    sent, _, _ = FRAMINGS[case]
    handed, reason, problems = read(sent + SUMMARY_2, size)
    assert handed == HANDED_ON[case]
    assert reason == "the client closed the connection"
    assert problems == (0 if case in ("LF only", "duplicate, equal") else 1)


def test_a_body_above_the_limit_is_read_past_in_bounded_memory() -> None:
    sent, _, _ = FRAMINGS["64 MiB + 1, sent"]
    handed, _, problems = read(sent + SUMMARY_2, transport.CHUNK)
    assert (handed, problems) == ([NEXT], 1)


def test_the_end_of_input_inside_a_frame_is_named() -> None:
    handed, reason, _ = read(length(50) + b"\r\n" + b'{"jsonrpc"', 3)
    assert handed == []
    assert reason == "the client closed the connection in the middle of a message"


def test_well_formed_frames_pass_unchanged() -> None:
    bodies = [b'{"a": "Content-Length: 5"}', b'{"b": "\\r\\nContent-Length: 7\\r\\n"}', b"[]"]
    handed, _, problems = read(b"".join(frame(b) for b in bodies), 5)
    assert handed == [{"a": "Content-Length: 5"}, {"b": "\r\nContent-Length: 7\r\n"}, []]
    assert problems == 0
