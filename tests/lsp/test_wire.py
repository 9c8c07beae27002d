"""The protocol under abuse, over the real server's stdio in raw bytes.

Broken frames, one test each. What the server does (transport.py says why):

  length too short          the truncated body gets a parse error (id null); the next request
                            is answered
  length too long           the message is answered (its JSON value ends where the next header
                            starts), and so is the next
  Content-Length: 0         dropped with a log line; the next request is answered
  LF-only headers           accepted: the message itself is answered
  not a number              dropped with a log line; the next request is answered
  duplicate, different      dropped with a log line; the next request is answered
  duplicate, equal          accepted: the message itself is answered
  10^11, 10^30, 64 MiB + 1  dropped with a log line (a real 64 MiB + 1 body is read past, never
                            held); the next request is answered
  junk between frames       skipped with a log line; the next request is answered
  end of input mid-frame    the server exits cleanly (status 0) saying so on stderr

No case closes the connection while input continues: every one resynchronises.

Then a bounded fuzz: batches of broken bodies, wrong params for every memlens method and
command, unknown methods; after each batch the server answers memlens/summary, and every
request with an id got exactly one response with the expected error code.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from wire import Wire, encode, frame, request_body

pytestmark = pytest.mark.asyncio(loop_scope="function")

SUMMARY_1 = request_body(1, "memlens/summary")
SUMMARY_2 = frame(request_body(2, "memlens/summary"))
MIB64 = 64 * 2**20


@pytest_asyncio.fixture(loop_scope="function")
async def wire(tmp_path: Path):
    server = await Wire.start(env={"TMPDIR": str(tmp_path)})
    await server.initialize(tmp_path)
    yield server
    server.kill()
    await server.wait()


def length(value: int | str) -> bytes:
    return f"Content-Length: {value}\r\n".encode()


FRAMINGS: dict[str, tuple[bytes, list[int], str]] = {
    # name: (bytes sent before SUMMARY_2, ids answered with a result, what stderr says)
    "too short": (
        length(len(SUMMARY_1) - 10) + b"\r\n" + SUMMARY_1,
        [2],
        "not valid JSON",
    ),
    "too long": (length(len(SUMMARY_1) + 10) + b"\r\n" + SUMMARY_1, [1, 2], "is longer than"),
    "far too long": (
        length(len(SUMMARY_1) + 5000) + b"\r\n" + SUMMARY_1,
        [1, 2],
        "runs into the next message",
    ),
    "zero": (length(0) + b"\r\n", [2], "Content-Length 0"),
    "LF only": (f"Content-Length: {len(SUMMARY_1)}\n\n".encode() + SUMMARY_1, [1, 2], ""),
    "not a number": (length("abc") + b"\r\n" + SUMMARY_1, [2], "'abc' is not a number"),
    "duplicate, different": (
        length(len(SUMMARY_1)) + length(len(SUMMARY_1) + 3) + b"\r\n" + SUMMARY_1,
        [2],
        "two different Content-Length",
    ),
    "duplicate, equal": (
        length(len(SUMMARY_1)) + length(len(SUMMARY_1)) + b"\r\n" + SUMMARY_1,
        [1, 2],
        "",
    ),
    "10^11": (length(10**11) + b"\r\n" + SUMMARY_1, [2], "above the 64 MiB limit"),
    "10^30": (length(10**30) + b"\r\n" + SUMMARY_1, [2], "above the 64 MiB limit"),
    "64 MiB + 1, sent": (
        length(MIB64 + 1) + b"\r\n" + b'{"a": "' + b"x" * (MIB64 - 8) + b'"}',
        [2],
        "above the 64 MiB limit",
    ),
    "junk": (b"hello there\r\n" + b"\x00\xff" * 3000, [2], "not a header"),
    "no length": (b"Content-Type: x\r\n\r\n" + SUMMARY_1, [2], "without a Content-Length"),
}


@pytest.mark.parametrize("case", list(FRAMINGS))
async def test_broken_frame_then_the_next_request_is_answered(wire: Wire, case: str) -> None:
    sent, answered, logged = FRAMINGS[case]
    wire.send_raw(sent + SUMMARY_2)
    await wire.all_answered(answered)
    assert all(wire.responses[i] == [{"jsonrpc": "2.0", "id": i, "result": None}] for i in answered)
    assert logged.encode() in wire.stderr
    assert wire.popups() == []
    assert await wire.exit() == 0
    assert b"Traceback" not in wire.stderr and b"MemoryError" not in wire.stderr


async def test_end_of_input_in_the_middle_of_a_frame_exits_cleanly(wire: Wire) -> None:
    wire.send_raw(length(100) + b"\r\n" + b'{"jsonrpc": "2.0", ')
    assert wire.process.stdin is not None
    wire.process.stdin.close()
    assert await wire.wait() == 0
    assert b"closed the connection in the middle of a message; the server exits" in wire.stderr


async def test_requests_around_the_session_are_refused_with_answers(tmp_path: Path) -> None:
    server = await Wire.start(env={"TMPDIR": str(tmp_path)})
    early = await server.request("memlens/summary", msg_id=1)
    assert early["error"] == {"code": -32002, "message": "the server is not initialized yet"}
    await server.initialize(tmp_path)
    again = await server.request("initialize", {"capabilities": {}}, msg_id=2)
    assert again["error"]["code"] == -32600
    assert (await server.request("shutdown", msg_id=3))["result"] is None
    late = await server.request("memlens/summary", msg_id=4)
    assert late["error"] == {"code": -32600, "message": "the server is shutting down"}
    server.send({"jsonrpc": "2.0", "method": "exit"})
    assert await server.wait() == 0


# --- the fuzz ------------------------------------------------------------------------------

COMMANDS = ["memlens.profile", "memlens.loadCapture", "memlens.showStack", "memlens.clear"]
REQUESTS = ["memlens/hotspots", "memlens/summary", "memlens/flamegraph", "memlens/fileUsage"]
# Arguments that fail each schema (strict: no field is coerced; unknown fields are refused).
WRONG: dict[str, list[Any]] = {
    "memlens.profile": [
        {}, {"uri": 5}, {"uri": None}, {"uri": ["file:///x.py"]}, {"uri": "file:///x.py",
        "args": "a b"}, {"uri": "file:///x.py", "env": {"A": 1}}, {"uri": "file:///x.py",
        "cwd": 3}, {"uri": "file:///x.py", "confirmed": "yes"}, {"uri": "file:///x.py", "x": 1},
        {"uri": "file:///x.py", "args": [1, 2]}, {"uri": "file:///x\x00.py"},
    ],
    "memlens.loadCapture": [{}, {"path": 1}, {"path": None}, {"path": "/x\x00"}, {"paths": "/x"}],
    "memlens.showStack": [{}, {"uri": "file:///x.py"}, {"uri": "file:///x.py", "line": "1"},
                          {"uri": "file:///x.py", "line": 1.5}, {"uri": 1, "line": 1}],
    "memlens.clear": [{"all": True}],
    "memlens/hotspots": [{"limit": "10"}, {"limit": True}, {"limit": 1.5}, {"top": 1}],
    "memlens/summary": [{"x": 1}],
    "memlens/flamegraph": [{"metric": 1}, {"nonce": []}, {"cspSource": {}}, {"inverted": True}],
    "memlens/fileUsage": [{}, {"uri": 1}, {"uri": None}],
}  # fmt: skip
NOT_AN_OBJECT: list[Any] = [1, -1, 2.5, "x", "", True, [], [{"uri": "file:///x.py"}]]


def broken_body(rng: random.Random) -> bytes:
    """A body that is not one JSON value."""
    kind = rng.randrange(5)
    if kind == 0:
        return bytes(rng.randrange(256) for _ in range(rng.randrange(1, 200)))
    if kind == 1:
        whole = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "memlens/summary"})
        return whole[: rng.randrange(1, len(whole))].encode()
    if kind == 2:
        return b"[" * rng.randrange(1, 200_000)
    if kind == 3:
        return b"{" + b'"a": 1,' * rng.randrange(1, 50)
    return b"1" * rng.randrange(5000, 20000)  # a number too long to read


NULL = "id null"  # answered with id null: no usable id could be read
SILENT = "no answer"  # a notification, or a response to nothing: logged only


def fuzz_message(rng: random.Random, msg_id: int) -> tuple[bytes, int | str]:
    """One message body, and how it must be answered: the error code for its id, NULL or
    SILENT."""
    kind = rng.randrange(8)
    if kind == 0:
        return broken_body(rng), NULL
    if kind == 1:  # valid JSON, not a request object
        value = rng.choice([*NOT_AN_OBJECT, {"jsonrpc": "2.0"}, {"method": "memlens/summary"}])
        return json.dumps(value).encode(), NULL
    if kind == 2:  # an id that is not a number or a string
        bad_id = rng.choice([None, True, 1.5, [1], {"a": 1}])
        return encode({"jsonrpc": "2.0", "id": bad_id, "method": "memlens/summary"}), NULL
    if kind == 3:  # a command with wrong arguments
        name = rng.choice(COMMANDS)
        argument = rng.choice(WRONG[name] + NOT_AN_OBJECT[:-1])
        arguments = rng.choice([[argument], [argument, argument], [{}, {}]])
        params = {"command": name, "arguments": arguments}
        return request_body(msg_id, "workspace/executeCommand", params), -32602
    if kind == 4:  # a custom request with wrong params
        name = rng.choice(REQUESTS)
        return request_body(msg_id, name, rng.choice(WRONG[name] + NOT_AN_OBJECT[:-2])), -32602
    if kind == 5:  # executeCommand or a standard request whose params do not fit lsprotocol
        method, params = rng.choice(
            [
                ("workspace/executeCommand", {"command": 5}),
                ("workspace/executeCommand", {"arguments": []}),
                ("workspace/executeCommand", {"command": "memlens.profile", "arguments": 7}),
                ("textDocument/hover", {"textDocument": {}}),
                ("textDocument/hover", {"textDocument": {"uri": "file:///x"}, "position": 1}),
                ("textDocument/codeLens", []),
                ("textDocument/inlayHint", {"textDocument": {"uri": "file:///x"}}),
            ]
        )
        return request_body(msg_id, method, params), -32602
    if kind == 6:  # an unknown method
        name = rng.choice(["memlens/nothing", "workspace/bogus", "x", "$/memlens"])
        return request_body(msg_id, name, {"a": msg_id}), -32601
    # a notification with params that do not fit or an unknown one, or a response to nothing
    method = rng.choice(
        ["textDocument/didOpen", "textDocument/didChange", "$/cancelRequest", "memlens/bogus"]
    )
    if rng.random() < 0.2:
        return encode({"jsonrpc": "2.0", "id": f"nothing-{msg_id}", "result": 1}), SILENT
    return encode({"jsonrpc": "2.0", "method": method, "params": rng.choice(NOT_AN_OBJECT)}), SILENT


async def test_protocol_fuzz(wire: Wire) -> None:
    rng = random.Random(20261202)
    batches, per_batch = 30, 100
    expected: dict[int, int] = {}  # request id -> its error code
    null_answers = 0
    for batch in range(batches):
        for number in range(per_batch):
            msg_id = 1000 + batch * per_batch + number
            body, answer = fuzz_message(rng, msg_id)
            wire.send_raw(frame(body))
            if isinstance(answer, int):
                expected[msg_id] = answer
            null_answers += answer == NULL
        after = await wire.request("memlens/summary", {}, msg_id=f"after-{batch}")
        assert after["result"] is None, after
    await wire.all_answered(list(expected))
    codes = {i: [r["error"]["code"] for r in wire.responses[i]] for i in expected}
    assert {i: c for i, c in codes.items() if c != [expected[i]]} == {}  # one answer each
    nulls = wire.responses.get(None, [])
    assert len(nulls) == null_answers
    assert all(r["error"]["code"] in (-32700, -32600) for r in nulls)
    messages = [r["error"]["message"] for rs in wire.responses.values() for r in rs if "error" in r]
    assert not [m for m in messages if "Traceback" in m or "Error:" in m or "internal" in m]
    assert wire.popups() == []
    assert await wire.exit() == 0
    answered = sum(len(r) for r in wire.responses.values())
    print(  # the figures for the report (pytest -s)
        f"fuzz: {batches * per_batch} messages + {batches} checks; {len(expected)} requests "
        f"with an id; {null_answers} answered with id null; {answered} responses in all"
    )
