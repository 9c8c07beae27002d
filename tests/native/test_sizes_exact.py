"""Exact allocation sizes and allocators, counted by the real tracker at the allocation hooks
(Profile.sizes, Profile.allocators): known C calls and a known Python buffer land in their
exact bucket and allocator, with exact counts and bytes."""

from __future__ import annotations

import ctypes
import shutil
import subprocess
import sys
from typing import Any

import pytest

import memlens
from memlens import _native, capture
from memlens.model import DOMAINS, Profile

pytestmark = pytest.mark.no_memlens  # these tests run their own Tracker

# Each allocator through a PLT the hooks patch (ctypes calls libc's own symbols directly, which
# no in-process hook sees).
ALLOCATORS_C = """
#define _GNU_SOURCE
#include <malloc.h>
#include <stdlib.h>
#include <sys/mman.h>
void* s_malloc(size_t n) { return malloc(n); }
void* s_calloc(size_t count, size_t n) { return calloc(count, n); }
void* s_realloc(void* p, size_t n) { return realloc(p, n); }
void* s_valloc(size_t n) { return valloc(n); }
void* s_pvalloc(size_t n) { return pvalloc(n); }
void* s_memalign(size_t alignment, size_t n) { return memalign(alignment, n); }
void* s_aligned_alloc(size_t alignment, size_t n) { return aligned_alloc(alignment, n); }
void* s_posix_memalign(size_t alignment, size_t n) {
    void* p = 0;
    return posix_memalign(&p, alignment, n) == 0 ? p : 0;
}
void* s_mmap(size_t n) {
    return mmap(0, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
}
void* s_mremap(void* p, size_t old, size_t n) { return mremap(p, old, n, MREMAP_MAYMOVE); }
void s_munmap(void* p, size_t n) { munmap(p, n); }
void s_free(void* p) { free(p); }
"""
SIGNATURES = {
    "s_malloc": [ctypes.c_size_t],
    "s_calloc": [ctypes.c_size_t, ctypes.c_size_t],
    "s_realloc": [ctypes.c_void_p, ctypes.c_size_t],
    "s_valloc": [ctypes.c_size_t],
    "s_pvalloc": [ctypes.c_size_t],
    "s_memalign": [ctypes.c_size_t, ctypes.c_size_t],
    "s_aligned_alloc": [ctypes.c_size_t, ctypes.c_size_t],
    "s_posix_memalign": [ctypes.c_size_t, ctypes.c_size_t],
    "s_mmap": [ctypes.c_size_t],
    "s_mremap": [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_size_t],
}


@pytest.fixture(scope="module")
def alloc_lib(tmp_path_factory: pytest.TempPathFactory) -> Any:
    if shutil.which("gcc") is None:
        pytest.skip("needs a C compiler")
    folder = tmp_path_factory.mktemp("allocators")
    (folder / "allocators.c").write_text(ALLOCATORS_C)
    library = folder / "liballocators.so"
    command = ["gcc", "-shared", "-fPIC", "-O0", "-o", str(library), str(folder / "allocators.c")]
    subprocess.run(command, check=True)
    lib = ctypes.CDLL(str(library))
    for name, arguments in SIGNATURES.items():
        function = getattr(lib, name)
        function.restype = ctypes.c_void_p
        function.argtypes = arguments
    lib.s_munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    lib.s_free.argtypes = [ctypes.c_void_p]
    return lib


def cells(profile: Profile) -> dict[tuple[str, int], tuple[int, int]]:
    """(domain, bucket_log2) -> (count, bytes)."""
    sizes = profile.sizes
    assert sizes is not None
    return {
        (DOMAINS[d], k): (n, b)
        for d, k, n, b in zip(
            sizes.domain.tolist(),
            sizes.bucket_log2.tolist(),
            sizes.count.tolist(),
            sizes.bytes.tolist(),
            strict=True,
        )
    }


def allocators(profile: Profile) -> dict[str, tuple[int, int]]:
    assert profile.allocators is not None
    return {a.name: (a.count, a.bytes) for a in profile.allocators}


def assert_adds_up(profile: Profile) -> None:
    """Every allocation is in one bucket and one allocator: both add up to the totals."""
    totals = (profile.totals.alloc_count, profile.totals.alloc_bytes)
    by_bucket = list(cells(profile).values())
    by_allocator = list(allocators(profile).values())
    assert (sum(n for n, _ in by_bucket), sum(b for _, b in by_bucket)) == totals
    assert (sum(n for n, _ in by_allocator), sum(b for _, b in by_allocator)) == totals


def test_a_ten_million_int_list_has_its_buffer_in_its_exact_bucket() -> None:
    with memlens.Tracker() as tracker:
        numbers = list(range(10_000_000))  # one item array of exactly 10,000,000 pointers
    profile = tracker.profile
    assert sys.getsizeof(numbers) - sys.getsizeof([]) == 80_000_000
    # 80,000,000 B is in [2**26, 2**27): the only allocation of that size in the block
    assert cells(profile)[("python", 26)] == (1, 80_000_000)
    assert max(k for _, k in cells(profile)) == 26
    assert_adds_up(profile)
    del numbers


def test_mallocs_of_100_bytes_are_in_the_64_to_127_bucket(alloc_lib: Any) -> None:
    kept = (ctypes.c_void_p * 5000)()  # made before: storing a pointer allocates nothing
    with memlens.Tracker() as tracker:
        for i in range(5000):
            kept[i] = alloc_lib.s_malloc(100)
        so_far = capture.loads(_native.snapshot())  # what checkpoints write, too
    assert cells(so_far)[("native", 6)] == (5000, 500_000)
    profile = tracker.profile
    assert cells(profile)[("native", 6)] == (5000, 500_000)
    assert allocators(profile)["malloc"] == (5000, 500_000)
    # Python's own allocations (ctypes' integers) are Python objects, never native
    assert {domain for domain, _ in cells(profile)} <= {"python", "native"}
    assert_adds_up(profile)
    for pointer in kept:
        alloc_lib.s_free(pointer)


def test_each_allocator_is_counted_exactly(alloc_lib: Any) -> None:
    with memlens.Tracker() as tracker:
        block = alloc_lib.s_calloc(10, 30)
        grown = alloc_lib.s_realloc(alloc_lib.s_realloc(None, 200), 5000)
        page = alloc_lib.s_valloc(3000)
        rounded = alloc_lib.s_pvalloc(3000)
        aligned = [alloc_lib.s_memalign(64, 700), alloc_lib.s_aligned_alloc(64, 640)]
        posix = alloc_lib.s_posix_memalign(64, 900)
        mapped = alloc_lib.s_mremap(alloc_lib.s_mmap(5000), 5000, 3 * 4096)
    profile = tracker.profile
    assert {name: use for name, use in allocators(profile).items() if name[:2] != "py"} == {
        "calloc": (1, 300),
        "realloc": (2, 5200),
        "valloc": (1, 3000),
        "pvalloc": (1, 3000),  # what was asked for, not the page it was rounded to
        "memalign": (1, 700),
        "aligned_alloc": (1, 640),
        "posix_memalign": (1, 900),
        "mmap": (1, 5000),
        "mremap": (1, 3 * 4096),
    }
    by_domain: dict[str, dict[int, tuple[int, int]]] = {}
    for (domain, k), use in cells(profile).items():
        by_domain.setdefault(domain, {})[k] = use
    assert by_domain["native"] == {
        7: (1, 200),  # realloc(NULL, 200)
        8: (1, 300),  # calloc(10, 30)
        9: (3, 700 + 640 + 900),  # memalign, aligned_alloc, posix_memalign
        11: (2, 3000 + 3000),  # valloc, pvalloc
        12: (1, 5000),  # the realloc to 5000
    }
    assert by_domain["mmap"] == {12: (1, 5000), 13: (1, 3 * 4096)}
    assert_adds_up(profile)
    alloc_lib.s_munmap(mapped, 3 * 4096)
    for pointer in (block, grown, page, rounded, *aligned, posix):
        alloc_lib.s_free(pointer)


def test_a_zero_byte_malloc_has_its_own_bucket(alloc_lib: Any) -> None:
    with memlens.Tracker(python_allocators=False) as tracker:
        empty = alloc_lib.s_malloc(0)
    assert cells(tracker.profile)[("native", -1)] == (1, 0)
    alloc_lib.s_free(empty)
