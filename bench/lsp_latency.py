"""Language-server latency on a big synthetic capture (10,000 stacks), measured over stdio.

    .venv/bin/python bench/lsp_latency.py [--stacks N]

Prints the time from `memlens.loadCapture` to its diagnostics being published (budget 200 ms)
and the round trip of an inlay-hint request for a 60-line range (budget 20 ms, median of 20).
The server is the real one (`python -m memlens.lsp`) in a child process; the clock runs in this
client, so the figures include JSON-RPC both ways.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from lsprotocol import types
from pygls.lsp.client import LanguageClient

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
    frame_file, frame_function, frame_line, frame_first = [], [], [], []
    for f in range(FILES):
        for line in range(1, LINES_PER_FILE + 1):
            frame_file.append(f)
            frame_function.append(FILES + (line // 4) % 100)
            frame_line.append(line)
            frame_first.append(max(1, line - line % 4))
    parent: list[int] = []
    frame: list[int] = []
    leaves: list[int] = []
    n_frames = len(frame_file)
    while len(leaves) < stacks:  # random paths; each new leaf is a distinct stack
        node = -1
        for _ in range(DEPTH):
            parent.append(node)
            frame.append(int(rng.integers(n_frames)))
            node = len(parent) - 1
        leaves.append(node)
    rows = len(leaves)
    count = rng.integers(1, 100, rows)
    size = rng.integers(1 << 10, 1 << 20, rows)
    data: dict[str, Any] = {
        "magic": "memlens-capture",
        "version": 1,
        "complete": True,
        "meta": {"argv": [str(files[0])], "pid": 1, "python_version": "3.11", "platform": "linux",
                 "memlens_version": "bench", "start_ns": 0, "end_ns": 3_000_000_000,
                 "python_allocators": True, "native_traces": False, "exit_code": 0},  # fmt: skip
        "frames": {"function": frame_function, "file": frame_file, "line": frame_line,
                   "first_line": frame_first},  # fmt: skip
        "stacks": {"parent": parent, "frame": frame},
        "stats": {
            "stack": leaves, "thread": [0] * rows, "domain": [0] * rows,
            "alloc_count": count.tolist(), "alloc_bytes": (count * size).tolist(),
            "peak_count": count.tolist(), "peak_bytes": size.tolist(),
            "leak_count": [0] * rows, "leak_bytes": [0] * rows,
            "temp_count": [0] * rows, "temp_bytes": [0] * rows,
        },  # fmt: skip
        "totals": {"alloc_count": int(count.sum()), "alloc_bytes": int((count * size).sum()),
                   "peak_bytes": int(size.sum()), "peak_ns": 1_000_000_000, "leak_bytes": 0,
                   "rss_peak": int(size.sum())},  # fmt: skip
        "timeline": {"t_ms": [0, 1000], "heap": [0, int(size.sum())], "rss": [0, 0]},
        "threads": {"id": [0], "name": [len(strings) - 1]},
        "strings": strings,
    }
    return capture.dumps(capture.from_dict(data)), files


async def measure(stacks: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        blob, files = synthetic(stacks, root)
        path = root / "big.msgpack"
        path.write_bytes(blob)
        client = LanguageClient("bench", "1")
        published: dict[str, float] = {}

        @client.feature(types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
        def on_diagnostics(_client: LanguageClient, params: types.PublishDiagnosticsParams) -> None:
            published[params.uri] = time.perf_counter()

        @client.feature("memlens/didUpdate")
        def on_update(_client: LanguageClient, params: Any) -> None:
            published["didUpdate"] = time.perf_counter()

        await client.start_io(sys.executable, "-m", "memlens.lsp")
        await client.initialize_async(
            types.InitializeParams(
                capabilities=types.ClientCapabilities(),
                root_uri=root.as_uri(),
                workspace_folders=[types.WorkspaceFolder(uri=root.as_uri(), name="bench")],
            )
        )
        client.initialized(types.InitializedParams())
        start = time.perf_counter()
        await client.workspace_execute_command_async(
            types.ExecuteCommandParams(
                command="memlens.loadCapture", arguments=[{"path": str(path)}]
            )
        )
        answered = time.perf_counter()
        while "didUpdate" not in published:
            await asyncio.sleep(0.001)
        last_diagnostics = max(t for k, t in published.items() if k != "didUpdate")

        uri = files[0].as_uri()
        client.text_document_did_open(
            types.DidOpenTextDocumentParams(
                text_document=types.TextDocumentItem(uri=uri, language_id="python", version=1,
                                                     text=files[0].read_text())  # fmt: skip
            )
        )
        times = []
        hints = 0
        for first in range(0, 400, 20):
            params = types.InlayHintParams(
                text_document=types.TextDocumentIdentifier(uri=uri),
                range=types.Range(start=types.Position(line=first, character=0),
                                  end=types.Position(line=first + 59, character=0)),  # fmt: skip
            )
            t0 = time.perf_counter()
            result = await client.text_document_inlay_hint_async(params)
            times.append(time.perf_counter() - t0)
            hints = max(hints, len(result or []))
        await client.shutdown_async(None)
        client.exit(None)
        await client.stop()
        return {
            "load_to_diagnostics_ms": (last_diagnostics - start) * 1000,
            "load_command_ms": (answered - start) * 1000,
            "inlay_hints_60_lines_median_ms": statistics.median(times) * 1000,
            "inlay_hints_60_lines_max_ms": max(times) * 1000,
            "hints_per_range": hints,
            "files_published": len(published) - 1,
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
