"""Frames on the wire: `Content-Length` headers and JSON bodies, read defensively.

pygls' own loop trusts every header: a huge length is allocated at once, and a broken frame
leaves it out of step with the stream for good. This reader never holds more than one body of at
most MAX_BODY bytes, and after a broken frame it finds the next header and carries on
(resynchronises). What it does per case, each logged on stderr with the reason:

  Content-Length above 64 MiB (10^11 too)  skipped up to the next header (the bytes are read and
                                           dropped as they come, never held)
  length too short                         the truncated body is answered as a parse error; the
                                           rest of it is skipped up to the next header
  length too long                          the body is cut where the next header starts, or where
                                           its JSON value ends: the message is handled, the rest
                                           is read as the next frame
  Content-Length: 0                        an empty frame, dropped; the next frame is read
  LF-only header lines                     accepted (as HTTP readers do)
  not a number, no Content-Length          the frame is dropped up to the next header
  duplicate Content-Length                 equal values are accepted; different ones drop the
                                           frame up to the next header
  end of input in the middle of a frame    the connection is closed (the server exits)

Why a header can be found inside a body: `Content-Length: <digits>` followed by a line end can
never occur in valid JSON (a string cannot hold a raw line end, and the words are not a JSON
token), so where it occurs, a new frame starts.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import queue
import re
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

logger = logging.getLogger("memlens.lsp")

MAX_BODY = 64 * 2**20
MAX_HEADER_LINE = 4096
CHUNK = 65536
# A header line that starts a frame; it cannot occur inside valid JSON (see the docstring).
FRAME_START = re.compile(rb"content-length:[ \t]*\d+[ \t]*\r?\n", re.IGNORECASE)
KEEP = 64  # bytes kept while skipping, so that a header split across two reads is still found

ReadChunk = Callable[[], Awaitable[bytes]]  # up to CHUNK bytes; b"" at the end of input


@dataclass(frozen=True)
class Message:
    """One frame's JSON value, or why it has none (`problem`, in the user's words)."""

    value: Any
    problem: str | None


class ConnectionClosed(Exception):
    """The input ended; the message says whether that was in the middle of a frame."""


class FrameReader:
    """Bodies of well-framed messages, one at a time, from a stream of chunks."""

    def __init__(self, read_chunk: ReadChunk) -> None:
        self.read_chunk = read_chunk
        self.buffer = bytearray()
        self.problems = 0  # broken frames seen (for the log and the tests)

    async def more(self, mid_frame: bool) -> None:
        chunk = await self.read_chunk()
        if not chunk:
            raise ConnectionClosed(
                "the client closed the connection in the middle of a message"
                if mid_frame or self.buffer.strip()
                else "the client closed the connection"
            )
        self.buffer += chunk

    def problem(self, reason: str) -> None:
        self.problems += 1
        logger.warning("memlens: broken message frame: %s", reason)

    async def skip_to_next_frame(self) -> None:
        """Drop bytes up to the next header that starts a frame (reading on as needed)."""
        while True:
            found = FRAME_START.search(self.buffer)
            if found:
                del self.buffer[: found.start()]
                return
            del self.buffer[: max(len(self.buffer) - KEEP, 0)]
            await self.more(mid_frame=True)

    async def header_line(self) -> bytes | None:
        """The next line (without its line end), or None when no header-sized line comes."""
        while True:
            end = self.buffer.find(b"\n", 0, MAX_HEADER_LINE)
            if end >= 0:
                return bytes(self.buffer[:end]).rstrip(b"\r")
            if len(self.buffer) >= MAX_HEADER_LINE:
                return None
            await self.more(mid_frame=bool(self.buffer.strip()))

    def consume_line(self) -> None:
        del self.buffer[: self.buffer.find(b"\n") + 1]

    async def content_length(self) -> int | None:
        """The headers of one frame: its body length, or None for a broken frame (skipped)."""
        length: int | None = None
        seen_header = False
        while True:
            line = await self.header_line()
            if line is not None and not line.strip():
                self.consume_line()
                if not seen_header:
                    continue  # blank lines between frames
                if length is None:
                    self.problem("headers without a Content-Length")
                    await self.skip_to_next_frame()
                return length
            name, colon, value = (line or b"").partition(b":")
            if not colon or not re.fullmatch(rb"[A-Za-z0-9-]+", name):
                # junk: the next frame may start inside it, so it stays in the buffer
                self.problem("bytes that are not a header: skipped up to the next message")
                del self.buffer[:1]
                await self.skip_to_next_frame()
                return None
            self.consume_line()
            seen_header = True
            if name.lower() != b"content-length":
                continue  # Content-Type and anything else: not needed
            problem = self.length_problem(value.strip(), length)
            if problem is None:
                length = int(value.strip())
                continue
            self.problem(problem)
            await self.skip_to_next_frame()
            return None

    @staticmethod
    def length_problem(text: bytes, before: int | None) -> str | None:
        shown = text[:40].decode("ascii", "replace")
        if not text.isdigit() or not text.isascii():
            return f"Content-Length {shown!r} is not a number"
        if len(text) > 12 or int(text) > MAX_BODY:
            return f"Content-Length {shown} is above the 64 MiB limit"
        if before is not None and int(text) != before:
            return f"two different Content-Length headers ({before} and {int(text)})"
        return None

    async def body(self, length: int) -> bytes:
        """`length` bytes, or fewer where the next frame's header shows the length was wrong."""
        scanned = 0
        while True:
            found = FRAME_START.search(self.buffer, max(scanned - KEEP, 0), length)
            if found:
                self.problem(f"Content-Length {length} runs into the next message")
                cut = found.start()
            elif len(self.buffer) >= length:
                cut = length
            else:
                scanned = len(self.buffer)
                await self.more(mid_frame=True)
                continue
            body = bytes(self.buffer[:cut])
            del self.buffer[:cut]
            return body

    async def next_message(self) -> Message | None:
        """The next message, None for a frame that was dropped; ConnectionClosed at the end."""
        length = await self.content_length()
        if length is None:
            return None
        if length == 0:
            self.problem("Content-Length 0: an empty message")
            return None
        return self.decode(await self.body(length))

    def decode(self, body: bytes) -> Message:
        """The JSON value of a body. A body that holds one value and then more (a length too
        long) keeps the value; what follows is put back to be read as the next frame."""
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as error:
            return Message(None, f"the message is not UTF-8 text (byte {error.start})")
        try:
            return Message(json.loads(text), None)
        except json.JSONDecodeError as error:
            if not error.msg.startswith("Extra data"):
                where = len(text[: error.pos].encode())
                return Message(None, f"the message is not valid JSON (at byte {where})")
            end = len(text[: error.pos].encode())
        except RecursionError:
            return Message(None, "the message is nested too deeply")
        except ValueError:
            return Message(None, "the message holds a number too long to read")
        self.problem(f"Content-Length {len(body)} is longer than its message ({end} bytes)")
        self.buffer[:0] = body[end:]
        return self.decode(body[:end])


async def serve(read_chunk: ReadChunk, receive: Callable[[Message], None]) -> str:
    """Hand every message to `receive` until the input ends; the reason it ended."""
    frames = FrameReader(read_chunk)
    while True:
        try:
            message = await frames.next_message()
        except ConnectionClosed as closed:
            return str(closed)
        if message is not None:
            receive(message)


class StdinChunks:
    """Chunks of a file descriptor, read on a daemon thread one request at a time (so a reader
    blocked on a silent client never holds up the exit, and the input is never read ahead)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.requests: queue.SimpleQueue[tuple[asyncio.AbstractEventLoop, asyncio.Future[bytes]]]
        self.requests = queue.SimpleQueue()
        threading.Thread(target=self._read, name="memlens-stdin", daemon=True).start()

    async def __call__(self) -> bytes:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[bytes] = loop.create_future()
        self.requests.put((loop, future))
        return await future

    def _read(self) -> None:
        while True:
            loop, future = self.requests.get()
            try:
                chunk = os.read(self.fd, CHUNK)
            except OSError:
                chunk = b""
            try:
                loop.call_soon_threadsafe(_settle, future, chunk)
            except RuntimeError:  # the loop is closed: the server is exiting
                return


def _settle(future: asyncio.Future[bytes], chunk: bytes) -> None:
    if not future.done():
        future.set_result(chunk)
