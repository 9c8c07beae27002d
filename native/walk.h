// The stack walk and its cost policy: a thread's Python frames, read in full or, while the
// eval hook (frames.h) pays for itself, only the frames that may have moved since its last walk.
// Walks run outside the tracker's lock: they read only the calling thread's own frames.
#pragma once

#include <atomic>
#include <cstdint>

#include "state.h"

namespace memlens {

// A full walk reads at most kMaxDepth frames (deeper stacks keep their innermost frames): each
// allocation pays for every frame it reads (~3 ns each, measured: a 50,000-deep recursion cost
// 25 s at 4,096 on 3.12, 3 s at 512, Memray 3.2 s). While the eval hook counts frames, walks
// re-read only the frames that moved, so stacks are kept whole up to kMaxHookedDepth (the same
// recursion on 3.11: 42 s -> 1.1 s; on 3.12 and 3.13, where the hook gives back the C recursion
// budget its frames take, 9.9x -> 3.9x and 8.2x -> 3.7x the unprofiled run). Only where the hook
// stepped aside (its C frames reached an eighth of a thread's stack, or a debugger's hook is
// set) do very deep stacks keep their innermost 512 frames.
constexpr int kMaxDepth = 512;
constexpr int kMaxHookedDepth = 1 << 17;
constexpr int kInnerFrames = 4;  // frames the walk reads in full (capacity is >= 64)

// What a walk found out. A full walk read every frame (walk_pos, walk_frames, and the innermost
// kInnerFrames in top); otherwise levels [0, keep) are known to be the last interned stack's
// and top[0..fresh) are the frames above them, innermost first.
struct Walk {
    int depth;
    int keep;
    int fresh;
    bool full;
    // Deeper than it read (a full walk at its cap): the levels lack the root, so the starting
    // thread's root rule cannot be checked on them (stacks.h).
    bool cut_short = false;
};

// The walk policy's round (bumped at each removal of the eval hook: per-thread tallies
// restart), and how many calls through the hook a thread makes between two weighings.
extern std::atomic<uint32_t> g_policy_round;
constexpr int64_t kPolicyCalls = int64_t{1} << 17;

// walk_stack's every other case, after its one read of the thread (memlens_read_moved).
[[nodiscard]] Walk walk_stack_rest(ThreadState* ts, const memlens_moved_levels& moved, int read,
                                   bool python_allocators);

// Outside the lock: the calling thread's stack, reading as few frames as the eval hook allows.
// Inline, the usual case: the hook counts, the policy needs no weighing, and the levels under
// those that may have moved are where the last stack left them (then levels [0, keep) are
// kept: ts->base + eval.low - 1 of them, since the hook's lowest frame since the last walk).
MEMLENS_ALWAYS_INLINE Walk walk_stack(ThreadState* ts, bool gil_held, bool python_allocators) {
    memlens_moved_levels moved;
    // keep + the levels read = ts->base + eval.depth must fit the thread's arrays.
    const int max_depth = ts->base >= 0 ? ts->capacity - ts->base : 0;
    const int read = memlens_read_moved(gil_held, max_depth, ts->top, ts->capacity, &moved);
    ts->thread = moved.thread;
    if (read == 2 && ts->policy_round == g_policy_round.load(std::memory_order_relaxed) &&
        ts->calls_mark >= 0 && moved.eval.calls - ts->calls_mark < kPolicyCalls) {
        const int keep = ts->base + moved.eval.low - 1;
        if (keep <= ts->depth && moved.below == (keep > 0 ? ts->frames[keep - 1] : nullptr)) {
            ts->frames_saved += keep;
            return {keep + moved.fresh, keep, moved.fresh, false};
        }
    }
    return walk_stack_rest(ts, moved, read, python_allocators);
}

// Outside the lock: every frame of the calling thread. `eval` is set while the hook is ours.
[[nodiscard]] Walk full_walk(ThreadState* ts, const void* thread, const memlens_eval_state* eval,
                             bool python_allocators);
// Whether a fast walk saw what a full one sees (for MEMLENS_CHECK_WALKS).
[[nodiscard]] bool fast_walk_agrees(ThreadState* ts, const Walk& walk);

// Grows every per-thread frame array to capacity; false when out of memory.
bool grow_thread_state(ThreadState* ts, int capacity);

// The frame and code at `level` (root first) of the calling thread's stack; false if the stack
// is not that deep. Allocates: call it with the guard held, outside the hooks.
bool frame_at_level(int level, const void** frame, const void** code);

// How walks went, for walk_stats(): fast walks whose frames did not line up with the last
// interned stack (then walked in full), fast walks a full walk disagreed with (checked only
// with MEMLENS_CHECK_WALKS), and removals of the eval hook that did not pay.
struct WalkTallies {
    std::atomic<uint64_t> misses{0}, errors{0}, hook_removals{0};
    bool check_walks = false;
};
extern WalkTallies g_walk_tallies;

// A new session: the policy starts over (the hook is installed at the first walk).
void reset_walk_policy(bool check_walks);

}  // namespace memlens
