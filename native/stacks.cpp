// A walk becomes a stack id (stacks.h).
#include "stacks.h"

#include <algorithm>
#include <cstring>

namespace memlens {

std::atomic<unsigned long long> g_code_epoch{0};

namespace {

// The node of one more level under parent. Computed once per (parent, position) thanks to the
// leaf cache, so the root rule costs the hot path nothing per frame.
int32_t child_node(Interning& interning, int32_t parent, const memlens_raw_frame& raw,
                   const void* focus_code) {
    if (parent == kExcluded) {
        return kExcluded;
    }
    if (parent == kCutRoot && focus_code != nullptr && raw.code != focus_code) {
        return kCutRoot;  // not in focus yet (memlens run's own frames are here)
    }
    int32_t frame = interning.location_frame(raw);
    if (frame == kOwnFrame) {
        return kExcluded;  // Tracker.__exit__, stop, snapshot...: everything under it is ours
    }
    return interning.node(parent, frame);
}

// Levels [from, depth) of the walk into the thread's stack; the raw frame of root-first level
// rf is top[depth - 1 - rf].
void intern_levels(Tables& tables, ThreadState* ts, int from, int depth) {
    const bool cut = ts->starting_thread && !ts->cut_short;
    const int cut_depth = cut ? tables.root.cut_depth : 0;
    const void* focus_code = cut ? tables.root.focus_code : nullptr;
    for (int rf = from; rf < depth; ++rf) {
        const memlens_raw_frame& raw = ts->top[depth - 1 - rf];
        int32_t node = kCutRoot;
        if (rf >= cut_depth) {
            int32_t parent = rf > 0 ? ts->nodes[rf - 1] : (cut ? kCutRoot : kNoStack);
            node = cached_child(tables, ts, parent, raw, focus_code);
        }
        ts->nodes[rf] = node;
        ts->pos[rf] = raw.instr;
        ts->frames[rf] = raw.frame;
    }
}

}  // namespace

void fill_leaf(Tables& tables, LeafEntry& leaf, int32_t parent, const memlens_raw_frame& raw,
               const void* focus_code) {
    leaf = {raw.instr, raw.code, parent, child_node(tables.interning, parent, raw, focus_code)};
}

// Re-interns only the levels that differ from the thread's previous stack (a loop changes only
// its innermost one). Positions alone identify a level: each points into its (living) code
// object, and the caches are dropped when a code object dies.
int32_t intern_chain(const LockedTables& locked, ThreadState* ts, Walk walk,
                     bool python_allocators) {
    Tables& tables = *locked;
    unsigned long long code_epoch = g_code_epoch.load(std::memory_order_acquire);
    if (ts->code_epoch != code_epoch) {
        // A code object died: its address may now hold another one.
        ts->code_epoch = code_epoch;
        ts->depth = 0;
        std::memset(ts->leaf_cache, 0, sizeof(ts->leaf_cache));
    }
    if (!walk.full && (walk.keep > ts->depth || ts->cut_short)) {
        // The levels it kept were forgotten (a new session, a dead code object), or are not
        // the root levels (a stack cut short).
        walk = full_walk(ts, ts->thread, nullptr, python_allocators);
    }
    if (!walk.full && g_walk_tallies.check_walks && !fast_walk_agrees(ts, walk)) {
        g_walk_tallies.errors.fetch_add(1, std::memory_order_relaxed);
    }
    const int depth = walk.depth;
    int same = 0;  // root-first levels equal to the previous stack's
    if (walk.full) {
        ++tables.walks.full;
        // Levels interned under the other root rule are never reused (intern_levels).
        const int common = walk.cut_short == ts->cut_short ? std::min(depth, ts->depth) : 0;
        // One pass: the compare, and the kept levels' frames (the next walk's hint).
        const void* const* walk_pos = ts->walk_pos + depth - 1;
        const void* const* walk_frames = ts->walk_frames + depth - 1;
        while (same < common && walk_pos[-same] == ts->pos[same]) {
            ts->frames[same] = walk_frames[-same];
            ++same;
        }
        // The walk read the innermost kInnerFrames in full already.
        int changed = depth - same;
        if (changed > kInnerFrames &&
            memlens_innermost_frames(ts->thread, ts->top, changed) != changed) {
            ts->depth = 0;  // cannot happen (the frames did not move); stay consistent anyway
            return ts->starting_thread ? kCutRoot : kNoStack;
        }
    } else {
        ++tables.walks.fast;
        same = walk.keep;
        const int common = std::min(depth, ts->depth);
        while (same < common && ts->top[depth - 1 - same].instr == ts->pos[same]) {
            ts->frames[same] = ts->top[depth - 1 - same].frame;
            ++same;
        }
    }
    ts->cut_short = walk.cut_short;
    intern_levels(tables, ts, same, depth);
    ts->depth = depth;
    memlens_eval_commit();
    return counted_stack(tables, ts);
}

}  // namespace memlens
