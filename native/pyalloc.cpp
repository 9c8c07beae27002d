// Every Python object allocation, through wrappers around the RAW, MEM and OBJ allocator
// domains; their malloc, calloc and free take the events' bodies inline (events.h). pymalloc's
// own malloc/mmap calls happen inside a wrapper, with the guard held, so they are not counted a
// second time by the GOT hooks.
#include "pyalloc.h"

#include <Python.h>

#include "events.h"
#include "tracker.h"

namespace memlens {
namespace {

struct Domains {
    PyMemAllocatorEx original[3];
    PyMemAllocatorEx wrapper[3];
    bool installed = false;
};
Domains D;

constexpr PyMemAllocatorDomain kDomains[3] = {PYMEM_DOMAIN_RAW, PYMEM_DOMAIN_MEM, PYMEM_DOMAIN_OBJ};
// The allocator each domain's allocations are counted under (same order).
template <int Index>
constexpr Allocator kAllocator = static_cast<Allocator>(kPyMemRaw + Index);

// The wrappers find the original through their template argument, never through ctx: RAW may
// be called without the GIL while PyMem_SetAllocator copies the struct, so a caller can pair
// our function with the old ctx (the originals ignore ctx, so the reverse pairing is harmless).
template <int Index>
void* py_malloc(void*, size_t size) {
    PyMemAllocatorEx& original = D.original[Index];
    if (!tracking() || Guard::held()) return original.malloc(original.ctx, size);
    Guard guard;
    void* p = original.malloc(original.ctx, size);
    record_alloc_inline(guard, p, size, kAllocator<Index>, Index != 0);
    return p;
}

template <int Index>
void* py_calloc(void*, size_t count, size_t size) {
    PyMemAllocatorEx& original = D.original[Index];
    if (!tracking() || Guard::held()) return original.calloc(original.ctx, count, size);
    Guard guard;
    void* p = original.calloc(original.ctx, count, size);
    record_alloc_inline(guard, p, count * size, kAllocator<Index>, Index != 0);
    return p;
}

template <int Index>
void* py_realloc(void*, void* old, size_t size) {
    PyMemAllocatorEx& original = D.original[Index];
    if (!tracking() || Guard::held()) return original.realloc(original.ctx, old, size);
    Guard guard;
    size_t old_size = record_free(guard, old, false);
    void* p = original.realloc(original.ctx, old, size);
    if (p == nullptr && old != nullptr && old_size != 0) {
        record_alloc(guard, old, old_size, kAllocator<Index>, Index != 0);  // failed: it lives on
    } else {
        record_alloc(guard, p, size, kAllocator<Index>, Index != 0);
    }
    return p;
}

template <int Index>
void py_free(void*, void* p) {
    PyMemAllocatorEx& original = D.original[Index];
    if (!tracking() || Guard::held() || p == nullptr) return original.free(original.ctx, p);
    Guard guard;
    if (Index == 0) {
        (void)record_free_inline(guard, p, true);
        original.free(original.ctx, p);
        return;
    }
    // MEM and OBJ are called with the GIL held, so no other thread can be handed p between
    // the free and its record: the free goes first and hides the record's cache miss.
    prefetch_block(p);
    original.free(original.ctx, p);
    (void)record_free_inline(guard, p, true);
}

template <int Index>
constexpr PyMemAllocatorEx wrapper() {
    return {nullptr, py_malloc<Index>, py_calloc<Index>, py_realloc<Index>, py_free<Index>};
}

}  // namespace

void install_python_allocators() {
    if (D.installed) return;
    D.wrapper[0] = wrapper<0>();
    D.wrapper[1] = wrapper<1>();
    D.wrapper[2] = wrapper<2>();
    for (int i = 0; i < 3; ++i) {
        PyMem_GetAllocator(kDomains[i], &D.original[i]);
        PyMem_SetAllocator(kDomains[i], &D.wrapper[i]);
    }
    D.installed = true;
}

void restore_python_allocators() {
    if (!D.installed) return;
    for (int i = 0; i < 3; ++i) {
        PyMem_SetAllocator(kDomains[i], &D.original[i]);
    }
    D.installed = false;
}

}  // namespace memlens
