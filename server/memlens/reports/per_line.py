"""Per-line "self" sums straight from the stack trie: what the reports that need only the memory a
line allocated itself use, without building the whole per-line index (inclusive numbers)."""

from __future__ import annotations

import numpy as np

from memlens.model import METRICS, Frame, Profile, _sum_topmost


def node_lines(profile: Profile) -> tuple[np.ndarray, list[Frame]]:
    """Per trie node, a key of its (file, line); and the first frame of each key. Keys are
    numbered in frame order, as the per-line index orders its lines."""
    keys: dict[tuple[str, int], int] = {}
    first: list[Frame] = []
    frame_key = np.empty(len(profile.frames), dtype=np.int64)
    for i, frame in enumerate(profile.frames):
        key = (frame.file, frame.line)
        if key not in keys:
            keys[key] = len(first)
            first.append(frame)
        frame_key[i] = keys[key]
    return frame_key[profile.stack_frame], first


def self_sums(
    profile: Profile, metrics: tuple[str, ...], node_key: np.ndarray, n_keys: int
) -> dict[str, np.ndarray]:
    """Per key: each metric summed over the rows whose stack ends at a node of that key."""
    rows = profile.stats.stack >= 0
    row_key = node_key[profile.stats.stack[rows]]
    return {
        metric: np.bincount(
            row_key, weights=profile.stats.values[rows, METRICS.index(metric)], minlength=n_keys
        ).astype(np.int64)
        for metric in metrics
    }


def inclusive_sums(
    profile: Profile, metrics: tuple[str, ...], node_key: np.ndarray, n_keys: int
) -> dict[str, np.ndarray]:
    """Per key: each metric of every stack through the line, a stack through it twice counted
    once (the per-line index's rule, with the model's own topmost sum, for these metrics only)."""
    totals = np.stack([profile.node_totals(metric)[1] for metric in metrics], axis=1)
    summed = _sum_topmost(totals, node_key, profile.stack_parent, n_keys)
    return {metric: summed[:, i] for i, metric in enumerate(metrics)}
