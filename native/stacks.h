// A walk becomes a stack id: the levels that differ from the thread's previous stack are
// interned (through a per-thread leaf cache), under the session's root rule: the starting
// thread's stacks are cut above its root frame (and above its focus code, if any), and a stack
// under memlens's own code is kExcluded (DESIGN.md "memlens never counts itself"). A stack
// deeper than its walk read (walk.h's kMaxDepth: without the eval hook) lacks its root
// levels, so the root rule cannot be checked: its innermost levels are counted as read, as on
// any other thread.
#pragma once

#include <atomic>
#include <cstdint>

#include "state.h"
#include "walk.h"

namespace memlens {

// Under the lock: the stack id of a walk; a trie node, kNoStack for a thread without Python
// frames, kCutRoot or kExcluded for one that is not counted.
[[nodiscard]] int32_t intern_chain(const LockedTables& tables, ThreadState* ts, Walk walk,
                                   bool python_allocators);

// Bumped when a code object that appeared in a stack dies: the per-thread caches (which hold no
// serial numbers, to keep their hits free of lookups) are dropped when it moves.
extern std::atomic<unsigned long long> g_code_epoch;

// The leaf cache's miss: interns raw under parent into leaf.
void fill_leaf(Tables& tables, LeafEntry& leaf, int32_t parent, const memlens_raw_frame& raw,
               const void* focus_code);

// The node of raw under parent, through the thread's leaf cache.
MEMLENS_ALWAYS_INLINE int32_t cached_child(Tables& tables, ThreadState* ts, int32_t parent,
                                           const memlens_raw_frame& raw, const void* focus_code) {
    auto slot = (reinterpret_cast<uintptr_t>(raw.instr) >> 1 ^
                 static_cast<uintptr_t>(parent) * 0x9E3779B1u) %
                kLeafCacheSize;
    LeafEntry& leaf = ts->leaf_cache[slot];
    if (leaf.instr != raw.instr || leaf.code != raw.code || leaf.parent != parent) {
        fill_leaf(tables, leaf, parent, raw, focus_code);
    }
    return leaf.node;
}

// The stack id of the thread's interned levels, under the root rule.
MEMLENS_ALWAYS_INLINE int32_t counted_stack(const Tables& tables, const ThreadState* ts) {
    if (!ts->starting_thread || ts->cut_short) {
        return ts->depth ? ts->nodes[ts->depth - 1] : kNoStack;
    }
    const int cut_depth = tables.root.cut_depth;
    if (ts->depth <= cut_depth) {
        return kCutRoot;  // the root frame itself, or its callers after it returned
    }
    if (cut_depth > 0 && ts->frames[cut_depth - 1] != tables.root.cut_frame) {
        return kCutRoot;  // the root frame returned: nothing is under it any more
    }
    return ts->nodes[ts->depth - 1];
}

// Under the lock, the usual event (a loop in one function): a fast walk that read one frame,
// the innermost, over levels the thread's last stack has, with no code object dead since. Does
// what intern_chain does then, without its general compares (the level is interned again only
// if its position moved); false, doing nothing, in every other case.
MEMLENS_ALWAYS_INLINE bool intern_innermost(Tables& tables, ThreadState* ts, const Walk& walk,
                                            int32_t* stack) {
    const int level = walk.keep;  // root first: the innermost level
    if (walk.full || walk.fresh != 1 || level < 1 || level > ts->depth || ts->cut_short ||
        ts->code_epoch != g_code_epoch.load(std::memory_order_acquire)) {
        return false;
    }
    const bool cut = ts->starting_thread;
    if (cut && level < tables.root.cut_depth) {
        return false;  // a level the root rule cuts
    }
    if (g_walk_tallies.check_walks && !fast_walk_agrees(ts, walk)) {
        g_walk_tallies.errors.fetch_add(1, std::memory_order_relaxed);  // as intern_chain does
    }
    ++tables.walks.fast;
    const memlens_raw_frame& raw = ts->top[0];
    if (level == ts->depth || raw.instr != ts->pos[level]) {
        ts->nodes[level] = cached_child(tables, ts, ts->nodes[level - 1], raw,
                                        cut ? tables.root.focus_code : nullptr);
        ts->pos[level] = raw.instr;
    }
    ts->frames[level] = raw.frame;
    ts->depth = level + 1;
    memlens_eval_commit();
    *stack = counted_stack(tables, ts);
    return true;
}

}  // namespace memlens
