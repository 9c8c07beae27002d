"""Language-server latency on a big synthetic capture (10,000 stacks), measured over stdio.

    .venv/bin/python bench/lsp_latency.py [--stacks N]

Prints the time from `memlens.loadCapture` to its diagnostics being published (budget 200 ms)
and the round trip of an inlay-hint request for a 60-line range (budget 20 ms, median of 20).
The server is the real one (`python -m memlens.lsp`) in a child process, driven over its pipes
by a bare JSON-RPC loop here; the figures include JSON encoding and the pipes both ways.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from asyncio.subprocess import PIPE
from pathlib import Path
from typing import Any

import msgpack
import numpy as np

from memlens import capture

FILES = 20
LINES_PER_FILE = 400
DEPTH = 8


def synthetic(stacks: int, root: Path) -> tuple[bytes, list[Path]]:
    """A capture with `stacks` distinct leaf stacks over FILES user files of the workspace."""
    rng = np.random.default_rng(7)
    files = [root / f"module_{i}.py" for i in range(FILES)]
    for f in files:
        f.write_text("".join(f"x_{n} = {n}\n" for n in range(LINES_PER_FILE)))
    strings = [str(f) for f in files] + [f"func_{i}" for i in range(100)] + ["MainThread"]
    frames = frames_map()
    parent, frame, leaves = random_stacks(rng, stacks, len(frames["file"]))
    rows = len(leaves)
    count = rng.integers(1, 100, rows)
    size = rng.integers(1 << 10, 1 << 20, rows)
    data: dict[str, Any] = {
        "magic": "memlens-capture",
        "version": 1,
        "complete": True,
        "meta": {
            "argv": [str(files[0])],
            "pid": 1,
            "python_version": "3.11",
            "platform": "linux",
            "memlens_version": "bench",
            "start_ns": 0,
            "end_ns": 3_000_000_000,
            "python_allocators": True,
            "native_traces": False,
            "exit_code": 0,
        },  # fmt: skip
        "frames": frames,
        "stacks": {"parent": parent, "frame": frame},
        "stats": {
            "stack": leaves,
            "thread": [0] * rows,
            "domain": [0] * rows,
            "alloc_count": count.tolist(),
            "alloc_bytes": (count * size).tolist(),
            "peak_count": count.tolist(),
            "peak_bytes": size.tolist(),
            "leak_count": [0] * rows,
            "leak_bytes": [0] * rows,
            "temp_count": [0] * rows,
            "temp_bytes": [0] * rows,
        },  # fmt: skip
        "totals": {
            "alloc_count": int(count.sum()),
            "alloc_bytes": int((count * size).sum()),
            "peak_bytes": int(size.sum()),
            "peak_ns": 1_000_000_000,
            "leak_bytes": 0,
            "rss_peak": int(size.sum()),
        },  # fmt: skip
        "timeline": {"t_ms": [0, 1000], "heap": [0, int(size.sum())], "rss": [0, 0]},
        "threads": {"id": [0], "name": [len(strings) - 1]},
        "strings": strings,
    }
    capture.from_dict(data)  # refused here, not in the server, if the map is wrong
    return msgpack.packb(data, use_bin_type=True), files


def frames_map() -> dict[str, list[int]]:
    """One frame per line of every file; functions span 4 lines, named from string FILES on."""
    frames: dict[str, list[int]] = {"function": [], "file": [], "line": [], "first_line": []}
    for f in range(FILES):
        for line in range(1, LINES_PER_FILE + 1):
            frames["file"].append(f)
            frames["function"].append(FILES + (line // 4) % 100)
            frames["line"].append(line)
            frames["first_line"].append(max(1, line - line % 4))
    return frames


def random_stacks(
    rng: np.random.Generator, stacks: int, n_frames: int
) -> tuple[list[int], list[int], list[int]]:
    """`stacks` random paths DEPTH deep: (parent, frame) of every node, and each path's leaf."""
    parent: list[int] = []
    frame: list[int] = []
    leaves: list[int] = []
    while len(leaves) < stacks:  # random paths; each new leaf is a distinct stack
        node = -1
        for _ in range(DEPTH):
            parent.append(node)
            frame.append(int(rng.integers(n_frames)))
            node = len(parent) - 1
        leaves.append(node)
    return parent, frame, leaves


class Connection:
    """A bare JSON-RPC client over the server's pipes: its clock starts when a message is sent
    and stops when the answer's bytes arrive (no client library in between)."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.next_id = 0

    def send(self, method: str, params: Any, *, request: bool = True) -> int | None:
        message: dict[str, Any] = {"jsonrpc": "2.0", "method": method, "params": params}
        if request:
            self.next_id += 1
            message["id"] = self.next_id
        body = json.dumps(message).encode()
        assert self.process.stdin is not None
        self.process.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        return message.get("id")

    async def receive(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        length = 0
        while (line := await self.process.stdout.readline()) not in (b"\r\n", b""):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        message: dict[str, Any] = json.loads(await self.process.stdout.readexactly(length))
        if "method" in message and "id" in message:  # a request from the server: say yes
            body = json.dumps({"jsonrpc": "2.0", "id": message["id"], "result": None}).encode()
            assert self.process.stdin is not None
            self.process.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        return message

    async def until(self, done: Any) -> list[tuple[float, dict[str, Any]]]:
        seen = []
        while True:
            message = await self.receive()
            seen.append((time.perf_counter(), message))
            if done(message):
                return seen


async def measure(stacks: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        blob, files = synthetic(stacks, root)
        path = root / "big.msgpack"
        path.write_bytes(blob)
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "memlens.lsp", stdin=PIPE, stdout=PIPE, limit=2**24
        )
        rpc = Connection(process)
        first = rpc.send("initialize", {"processId": None, "rootUri": root.as_uri(),
                                        "capabilities": {}})  # fmt: skip
        await rpc.until(lambda m: m.get("id") == first)
        rpc.send("initialized", {}, request=False)

        start = time.perf_counter()
        arguments = [{"path": str(path)}]
        load = rpc.send(
            "workspace/executeCommand", {"command": "memlens.loadCapture", "arguments": arguments}
        )
        seen = await rpc.until(lambda m: m.get("id") == load)
        diagnostics = [t for t, m in seen if m.get("method") == "textDocument/publishDiagnostics"]
        answered = seen[-1][0]

        uri = files[0].as_uri()
        text = files[0].read_text()
        rpc.send("textDocument/didOpen", {"textDocument": {"uri": uri, "languageId": "python",
                 "version": 1, "text": text}}, request=False)  # fmt: skip
        times = []
        hints = 0
        for top in range(0, 400, 20):
            start_at = {"line": top, "character": 0}
            end_at = {"line": top + 59, "character": 0}
            params = {"textDocument": {"uri": uri}, "range": {"start": start_at, "end": end_at}}
            t0 = time.perf_counter()
            asked = rpc.send("textDocument/inlayHint", params)
            (*_, (t1, answer)) = await rpc.until(lambda m, asked=asked: m.get("id") == asked)
            times.append(t1 - t0)
            hints = max(hints, len(answer.get("result") or []))
        done = rpc.send("shutdown", None)
        await rpc.until(lambda m: m.get("id") == done)
        rpc.send("exit", None, request=False)
        await process.wait()
        return {
            "load_to_diagnostics_ms": (max(diagnostics) - start) * 1000,
            "load_command_ms": (answered - start) * 1000,
            "inlay_hints_60_lines_first_ms": times[0] * 1000,
            "inlay_hints_60_lines_median_ms": statistics.median(times) * 1000,
            "inlay_hints_60_lines_max_ms": max(times) * 1000,
            "hints_per_range": hints,
            "files_published": len(diagnostics),
        }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stacks", type=int, default=10_000)
    options = parser.parse_args()
    figures = asyncio.run(measure(options.stacks))
    print(f"stacks: {options.stacks}")
    for name, value in figures.items():
        print(f"{name}: {value:.1f}" if isinstance(value, float) else f"{name}: {value}")
    ok = figures["load_to_diagnostics_ms"] < 200 and figures["inlay_hints_60_lines_median_ms"] < 20
    print("within budget" if ok else "OVER BUDGET (200 ms load, 20 ms hints)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
