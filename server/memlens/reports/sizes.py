"""Allocation sizes and allocators of a run, as `memlens stats`, `memlens json` and the flame
graph's stats panel show them.

Captures count sizes exactly (`Profile.sizes`: the tracker buckets every allocation by its
size as it is made) and per allocator (`Profile.allocators`). Captures from before that have
neither: their histogram is estimated from each line's mean sizes (`estimated` says which),
and they have no allocator breakdown.

A histogram entry: {"min_bytes", "max_bytes", "count", "bytes"}, smallest sizes first, empty
buckets left out. Bucket k holds the sizes of k+1 bits, [2^k, 2^(k+1) - 1]; 0-byte requests
(malloc(0)) have their own entry, [0, 0]. Exact entries also split count and bytes by domain:
"by_domain": {"python" | "native" | "mmap": {"count", "bytes"}}.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from memlens import measures
from memlens.model import DOMAINS, Profile
from memlens.units import format_bytes

# What the capture's allocator names stand for (an unknown name, from a newer tracker, shows as is).
ALLOCATOR_LABELS = {
    "malloc": "malloc",
    "calloc": "calloc",
    "realloc": "realloc (and reallocarray)",
    "posix_memalign": "posix_memalign",
    "aligned_alloc": "aligned_alloc",
    "memalign": "memalign",
    "valloc": "valloc",
    "pvalloc": "pvalloc",
    "mmap": "mmap",
    "mremap": "mremap",
    "pymem_raw": "PyMem_Raw (Python's raw domain)",
    "pymem": "PyMem (Python's mem domain)",
    "pyobject": "PyObject (Python objects)",
}


def estimated(profile: Profile) -> bool:
    """Whether the histogram is estimated (a capture without exact sizes)."""
    return profile.sizes is None


def histogram(profile: Profile) -> list[dict[str, Any]]:
    """The size histogram: exact when the capture counts sizes, else estimated."""
    return _estimated_histogram(profile) if profile.sizes is None else _exact_histogram(profile)


def bucket_label(entry: dict[str, Any]) -> str:
    """ "64 B to < 128 B", or "0 B (zero-size requests)"."""
    if entry["max_bytes"] == 0:
        return "0 B (zero-size requests)"
    return f"{format_bytes(entry['min_bytes'])} to < {format_bytes(entry['max_bytes'] + 1)}"


def allocators(profile: Profile) -> list[dict[str, Any]] | None:
    """Count and bytes per allocator, most bytes first; None for a capture that does not count
    them."""
    if profile.allocators is None:
        return None
    used = sorted(profile.allocators, key=lambda a: (-a.bytes, -a.count, a.name))
    return [
        {
            "name": a.name,
            "label": ALLOCATOR_LABELS.get(a.name, a.name),
            "count": a.count,
            "bytes": a.bytes,
        }
        for a in used
    ]


def _exact_histogram(profile: Profile) -> list[dict[str, Any]]:
    sizes = profile.sizes
    assert sizes is not None
    out = []
    for k in np.unique(sizes.bucket_log2).tolist():
        in_bucket = sizes.bucket_log2 == k
        by_domain = {
            name: {
                "count": int(sizes.count[in_bucket & (sizes.domain == d)].sum()),
                "bytes": int(sizes.bytes[in_bucket & (sizes.domain == d)].sum()),
            }
            for d, name in enumerate(DOMAINS)
        }
        out.append(
            {
                "min_bytes": 0 if k < 0 else 1 << k,
                "max_bytes": 0 if k < 0 else (2 << k) - 1,
                "count": sum(d["count"] for d in by_domain.values()),
                "bytes": sum(d["bytes"] for d in by_domain.values()),
                "by_domain": by_domain,
            }
        )
    return out


def _estimated_histogram(profile: Profile) -> list[dict[str, Any]]:
    # Each row splits into disjoint groups (temporary, leaked, the rest), each bucketed by its
    # mean size: a line that allocates one big buffer and a few small temporaries is right.
    def column(metric: str) -> np.ndarray:
        return profile.stats.values[:, measures.COLUMNS.index(metric)]

    rest_count = column("alloc_count") - column("temp_count") - column("leak_count")
    rest_bytes = column("alloc_bytes") - column("temp_bytes") - column("leak_bytes")
    count = np.concatenate([column("temp_count"), column("leak_count"), rest_count])
    size = np.concatenate([column("temp_bytes"), column("leak_bytes"), rest_bytes])
    groups = (count > 0) & (size >= count)  # a mean of at least one byte
    count, size = count[groups], size[groups]
    mean = size // count
    # bits of the mean size: k+1 for [2^k, 2^(k+1))
    bits = np.floor(np.log2(mean)).astype(np.int64) + 1
    # per bucket, in one pass (int64 throughout: float weights would round big byte counts)
    counts = np.zeros(65, dtype=np.int64)
    sums = np.zeros(65, dtype=np.int64)
    np.add.at(counts, bits, count)
    np.add.at(sums, bits, size)
    return [
        {
            "min_bytes": 1 << (b - 1),
            "max_bytes": (1 << b) - 1,
            "count": int(counts[b]),
            "bytes": int(sums[b]),
        }
        for b in np.flatnonzero(counts).tolist()
    ]
