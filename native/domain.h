// The allocator families an allocation is charged to (the capture's `domain` column), and the
// allocator functions themselves (the capture's `allocators` table).
#pragma once

#include <cstdint>

namespace memlens {

enum Domain : uint8_t { kPythonDomain = 0, kMallocDomain = 1, kMmapDomain = 2 };
constexpr int kDomainCount = 3;

// What made an allocation: a hooked function, or one of Python's allocator domains (their
// malloc, calloc and realloc alike). kAllocatorNames spells them in the capture.
enum Allocator : uint8_t {
    kMalloc,
    kCalloc,
    kRealloc,  // realloc and reallocarray
    kPosixMemalign,
    kAlignedAlloc,
    kMemalign,
    kValloc,
    kPvalloc,
    kMmap,  // mmap and mmap64
    kMremap,
    kPyMemRaw,  // PYMEM_DOMAIN_RAW
    kPyMem,     // PYMEM_DOMAIN_MEM
    kPyObject,  // PYMEM_DOMAIN_OBJ
    kAllocatorCount
};
constexpr const char* kAllocatorNames[kAllocatorCount] = {
    "malloc",  "calloc", "realloc", "posix_memalign", "aligned_alloc", "memalign", "valloc",
    "pvalloc", "mmap",   "mremap",  "pymem_raw",      "pymem",         "pyobject"};

constexpr Domain domain_of(Allocator allocator) {
    return allocator >= kPyMemRaw ? kPythonDomain
           : allocator >= kMmap   ? kMmapDomain
                                  : kMallocDomain;
}

}  // namespace memlens
