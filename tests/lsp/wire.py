"""The real server over stdio, spoken to in raw bytes (no LSP library between the test and it).

Frames the server sends are parsed strictly here: a broken frame from the server fails the test.
Requests from the server (progress create, refreshes) are answered with null.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any


def frame(body: bytes) -> bytes:
    return b"Content-Length: %d\r\n\r\n" % len(body) + body


def encode(message: dict[str, Any]) -> bytes:
    return json.dumps(message).encode()


def request_body(msg_id: int | str, method: str, params: Any = None) -> bytes:
    message: dict[str, Any] = {"jsonrpc": "2.0", "id": msg_id, "method": method}
    if params is not None:
        message["params"] = params
    return encode(message)


class Wire:
    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.responses: dict[Any, list[dict[str, Any]]] = {}  # id -> every response with it
        self.notifications: list[dict[str, Any]] = []
        self.stderr = bytearray()
        self.arrived = asyncio.Event()
        self.readers = [asyncio.ensure_future(self._read()), asyncio.ensure_future(self._err())]

    @classmethod
    async def start(cls, env: dict[str, str] | None = None) -> Wire:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "memlens.lsp",
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, env={**os.environ, **(env or {})},
        )  # fmt: skip
        return cls(process)

    async def initialize(self, root: Path) -> None:
        result = await self.request(
            "initialize", {"processId": None, "rootUri": root.as_uri(), "capabilities": {}}
        )
        assert "result" in result, result
        self.send({"jsonrpc": "2.0", "method": "initialized", "params": {}})

    def send_raw(self, data: bytes) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(data)

    def send(self, message: dict[str, Any]) -> None:
        self.send_raw(frame(encode(message)))

    async def request(
        self, method: str, params: Any = None, msg_id: int | str | None = None, timeout: float = 20
    ) -> dict[str, Any]:
        msg_id = msg_id if msg_id is not None else f"req-{len(self.responses)}-{method}"
        self.send_raw(frame(request_body(msg_id, method, params)))
        return await self.response(msg_id, timeout)

    async def response(self, msg_id: Any, timeout: float = 20) -> dict[str, Any]:
        async def arrived() -> dict[str, Any]:
            while not self.responses.get(msg_id):
                self.arrived.clear()
                await self.arrived.wait()
            return self.responses[msg_id][0]

        return await asyncio.wait_for(arrived(), timeout)

    async def all_answered(self, ids: list[Any], timeout: float = 20) -> None:
        for msg_id in ids:
            await self.response(msg_id, timeout)

    async def exit(self, timeout: float = 20) -> int:
        """shutdown, exit, and the server's exit status."""
        answer = await self.request("shutdown")
        assert answer.get("result", "missing") is None, answer
        self.send({"jsonrpc": "2.0", "method": "exit"})
        return await self.wait(timeout)

    async def wait(self, timeout: float = 20) -> int:
        code = await asyncio.wait_for(self.process.wait(), timeout)
        await asyncio.gather(*self.readers, return_exceptions=True)
        return code

    def kill(self) -> None:
        if self.process.returncode is None:
            self.process.kill()

    async def _read(self) -> None:
        stream = self.process.stdout
        assert stream is not None
        while True:
            header = await stream.readuntil(b"\r\n\r\n")
            assert header.startswith(b"Content-Length: "), header
            length = int(header[16:-4])
            message = json.loads(await stream.readexactly(length))
            if "method" in message and "id" in message:  # the server asks: answer null
                self.send({"jsonrpc": "2.0", "id": message["id"], "result": None})
            elif "method" in message:
                self.notifications.append(message)
            else:
                self.responses.setdefault(message.get("id"), []).append(message)
            self.arrived.set()

    async def _err(self) -> None:
        stream = self.process.stderr
        assert stream is not None
        while chunk := await stream.read(65536):
            self.stderr += chunk

    def popups(self) -> list[str]:
        shown = [n for n in self.notifications if n["method"] == "window/showMessage"]
        return [n["params"]["message"] for n in shown]
