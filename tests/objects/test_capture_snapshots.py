"""The `snapshots` part of a capture: read back exactly, absent in older captures, and every
malformed value refused with one line (capture.py)."""

from __future__ import annotations

import copy
from typing import Any

import capture_writer
import msgpack
import pytest

from memlens import capture
from memlens.snapshots import Holder, HolderStep, ObjectGroup, Snapshot

from .synthetic_snapshots import with_snapshots


def test_snapshots_round_trip() -> None:
    raw = with_snapshots()
    profile = capture.loads(msgpack.packb(raw))
    assert profile.snapshots == (
        Snapshot(
            label="warm",
            t_ms=100,
            objects=(
                ObjectGroup("bytearray", 0, 10_000, 10_570_000),
                ObjectGroup("str", -1, 3, 150),
            ),
            holders=(
                Holder(
                    type="bytearray",
                    stack=0,
                    count=10_000,
                    bytes=10_570_000,
                    root="class",
                    steps=(
                        HolderStep("Cache.entries (dict, 10,000 items)", 1),
                        HolderStep("class Cache", -1),
                        HolderStep("module app", -1),
                    ),
                ),
            ),
            complete=True,
        ),
        Snapshot(label="exit", t_ms=1500, objects=(), holders=(), complete=False),
    )
    holder = profile.snapshots[0].holders[0]
    assert holder.text == "Cache.entries (dict, 10,000 items) <- class Cache <- module app"
    assert profile.snapshots[0].by_type() == {"bytearray": (10_000, 10_570_000), "str": (3, 150)}
    # and written again by dumps, the same
    assert capture.loads(capture_writer.dumps(profile)).snapshots == profile.snapshots


def test_captures_without_snapshots_have_none() -> None:
    raw = with_snapshots()
    del raw["snapshots"]
    assert capture.loads(msgpack.packb(raw)).snapshots == ()


def _set(path: tuple[Any, ...], value: Any) -> Any:
    def edit(raw: dict[str, Any]) -> None:
        target: Any = raw
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return edit


OBJECTS = ("snapshots", 0, "objects")
HOLDER = ("snapshots", 0, "holders", 0)


@pytest.mark.parametrize(
    ("edit", "says"),
    [
        (_set(("snapshots",), {"label": "x"}), "'snapshots' is not a list"),
        (_set(("snapshots",), [{}] * (capture.MAX_SNAPSHOTS + 1)), "'snapshots' is not a list"),
        (_set(("snapshots", 0), [1]), "a snapshot is not a map"),
        (_set(("snapshots", 0, "label"), b"x"), "'label' or 'complete' is malformed"),
        (_set(("snapshots", 0, "complete"), 1), "'label' or 'complete' is malformed"),
        (_set(("snapshots", 0, "t_ms"), -1), "'snapshots.t_ms' is -1"),
        (_set(("snapshots", 0, "t_ms"), 10**9), "'snapshots.t_ms' is 1000000000"),
        (_set(("snapshots", 0, "t_ms"), 1.5), "'snapshots.t_ms' is not an integer"),
        (_set(OBJECTS, [1]), "missing or malformed 'objects'"),
        (_set((*OBJECTS, "type"), [0, 99]), "'snapshots.objects.type' refers outside"),
        (_set((*OBJECTS, "stack"), [0, 2]), "'snapshots.objects.stack' refers outside"),
        (_set((*OBJECTS, "stack"), [-2, 0]), "'snapshots.objects.stack' refers outside"),
        (_set((*OBJECTS, "count"), [1]), "'snapshots.objects.count' has 1 entries, expected 2"),
        (_set((*OBJECTS, "count"), [-1, 0]), "'snapshots.objects.count' has a value outside"),
        (_set((*OBJECTS, "bytes"), [2**63, 0]), "'snapshots.objects.bytes' has an integer out"),
        (
            _set((*OBJECTS, "bytes"), [2**62, 2**62]),
            "'snapshots.objects.bytes' adds up to more than int64",
        ),
        (_set((*OBJECTS, "type"), ["str", 0]), "'snapshots.objects.type' is not a list of int"),
        (_set(("snapshots", 0, "holders"), {}), "'snapshots.holders' is not a list"),
        (
            _set(("snapshots", 0, "holders"), [{}] * (capture.MAX_HOLDERS + 1)),
            "'snapshots.holders' is not a list",
        ),
        (_set(HOLDER, "x"), "a holder is not a map"),
        (_set((*HOLDER, "root"), "global"), "a holder's 'root' is not one of"),
        (_set((*HOLDER, "type"), 99), "'snapshots.holders.type' is 99"),
        (_set((*HOLDER, "stack"), 2), "'snapshots.holders.stack' is 2"),
        (_set((*HOLDER, "count"), -5), "'snapshots.holders.count' is -5"),
        (_set((*HOLDER, "bytes"), True), "'snapshots.holders.bytes' is not an integer"),
        (_set((*HOLDER, "steps"), [{}] * 65), "a holder's 'steps' is not a list of at most 64"),
        (_set((*HOLDER, "steps", 0), 3), "a holder step is not a map"),
        (_set((*HOLDER, "steps", 0, "text"), -1), "'snapshots.holders.steps.text' is -1"),
        (_set((*HOLDER, "steps", 0, "stack"), -2), "'snapshots.holders.steps.stack' is -2"),
    ],
)
def test_malformed_snapshots_are_refused(edit: Any, says: str) -> None:
    raw = copy.deepcopy(with_snapshots())
    edit(raw)
    with pytest.raises(capture.CaptureError) as error:
        capture.loads(msgpack.packb(raw), source="snap.msgpack")
    message = str(error.value)
    assert message.startswith("snap.msgpack: corrupt capture: "), message
    assert says in message, message
    assert "\n" not in message
