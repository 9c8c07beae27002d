// The allocation events' bodies (tracker.h's record_alloc and record_free), inline: the
// allocator wrappers of pyalloc.cpp, which run for every Python object, take them without a
// second call and its saved registers (measured: ~30 instructions per allocation and its
// free). Internal to the tracker's units, as state.h is.
#pragma once

#include "stacks.h"
#include "state.h"
#include "threads.h"
#include "walk.h"

namespace memlens {

// The row of (stack, this thread, domain), through the thread's row cache.
MEMLENS_ALWAYS_INLINE uint32_t row_for(const LockedTables& tables, ThreadState* ts, int32_t stack,
                                       Domain domain) {
    RowCacheEntry& cached = ts->row_cache[static_cast<uint32_t>(stack) % kRowCacheSize];
    if (cached.stack == stack && cached.rows[domain] != kNoRow) {
        return cached.rows[domain];
    }
    if (cached.stack != stack) {
        cached = {stack, {kNoRow, kNoRow, kNoRow}};
    }
    uint32_t row = tables->aggregate.row(stack, ts->thread_index, domain);
    cached.rows[domain] = row;
    return row;
}

// Under the lock, after bind_thread: the row an event of this thread is charged to, kNoRow if
// it is not counted (another thread under current_thread_only, memlens's own code, outside the
// starting thread's root or focus).
MEMLENS_ALWAYS_INLINE uint32_t counted_row(const LockedTables& tables, ThreadState* ts,
                                           const Walk& walk, Domain domain) {
    if (tables->root.current_thread_only && !ts->starting_thread) {
        return kNoRow;
    }
    int32_t stack = kNoStack;
    if (!intern_innermost(*tables, ts, walk, &stack)) {
        stack = intern_chain(tables, ts, walk, S.options.python_allocators);
    }
    if (stack < kNoStack) {
        return kNoRow;
    }
    return row_for(tables, ts, stack, domain);
}

// record_alloc (tracker.h).
MEMLENS_ALWAYS_INLINE void record_alloc_inline(const Guard& guard, void* address, size_t size,
                                               Allocator allocator, bool gil_held) noexcept {
    // No exception may cross a hook into C code (only bad_alloc can happen here).
    try {
        ThreadState* ts = thread_state(guard);
        if (ts == nullptr || address == nullptr) {
            return;
        }
        auto key = reinterpret_cast<uintptr_t>(address);
        // The block's record is a cache miss once the tables outgrow the cache: let it load
        // during the walk.
        S.tables.unlocked_view().aggregate.prefetch(key, size);
        Walk walk = walk_stack(ts, gil_held, S.options.python_allocators);
        LockedTables tables(guard, S.tables);
        if (!tracking()) {
            return;
        }
        if (ts->session != tables->session || ts->names_epoch != tables->names_epoch) {
            bind_thread(tables, ts);  // a new session, or a thread renamed
        }
        uint32_t row = counted_row(tables, ts, walk, domain_of(allocator));
        if (row != kNoRow) {
            tables->aggregate.alloc(key, size, row, allocator, &ts->window);
        }
    } catch (...) {
        return;
    }
}

// record_free (tracker.h).
MEMLENS_ALWAYS_INLINE size_t record_free_inline(const Guard& guard, void* address,
                                                bool count_temporary) noexcept {
    // No exception may cross a hook into C code (only bad_alloc can happen here).
    try {
        if (address == nullptr) {
            return 0;
        }
        LockedTables tables(guard, S.tables);
        if (!tracking()) {
            return 0;
        }
        ThreadState* ts = t_state;
        TemporaryWindow* window = ts && ts->session == tables->session ? &ts->window : nullptr;
        return static_cast<size_t>(
            tables->aggregate.free(reinterpret_cast<uintptr_t>(address), count_temporary, window));
    } catch (...) {
        return 0;
    }
}

}  // namespace memlens
