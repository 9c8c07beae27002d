// The stack walk and its cost policy (walk.h).
#include "walk.h"

#include <algorithm>
#include <cstdlib>
#include <vector>

namespace memlens {

WalkTallies g_walk_tallies;
std::atomic<uint32_t> g_policy_round{0};

namespace {

// Whether the eval hook pays (frames.h): a call through it costs about what reading
// kCallCostInFrames frames in a walk costs (measured: ~20 ns against ~1.3 ns). Each time a
// thread has made kPolicyCalls calls through it, the frames its fast walks skipped since are
// weighed against those calls; if they are worth less, the hook is removed, and installed again
// once full walks have read g_retry_frames frames (doubled after each removal).
constexpr int64_t kCallCostInFrames = 15;
constexpr int64_t kFirstRetryFrames = int64_t{1} << 20;
std::atomic<int64_t> g_retry_frames{0};  // 0: install at the first walk

template <class T>
bool grow_buffer(T*& buffer, int capacity) {
    auto* grown = static_cast<T*>(std::realloc(buffer, sizeof(T) * static_cast<size_t>(capacity)));
    if (grown == nullptr) return false;
    buffer = grown;
    return true;
}

// The next install waits for twice as many walked frames as the last one did.
void back_off_eval_hook() {
    int64_t retry = g_retry_frames.load(std::memory_order_relaxed);
    g_retry_frames.store(std::max(kFirstRetryFrames, 2 * retry), std::memory_order_relaxed);
    g_policy_round.fetch_add(1, std::memory_order_relaxed);
}

void weigh_eval_hook(ThreadState* ts, const void* thread, const memlens_eval_state& eval) {
    int64_t calls = eval.calls - ts->calls_mark;
    if (calls < kPolicyCalls) {
        return;
    }
    if (ts->frames_saved < kCallCostInFrames * calls) {
        memlens_eval_hook_uninstall(thread);
        back_off_eval_hook();
        g_walk_tallies.hook_removals.fetch_add(1, std::memory_order_relaxed);
    }
    ts->calls_mark = eval.calls;
    ts->frames_saved = 0;
}

}  // namespace

void reset_walk_policy(bool check_walks) {
    g_walk_tallies.misses.store(0);
    g_walk_tallies.errors.store(0);
    g_walk_tallies.hook_removals.store(0);
    g_walk_tallies.check_walks = check_walks;
    g_retry_frames.store(0);
    g_policy_round.fetch_add(1);
}

bool grow_thread_state(ThreadState* ts, int capacity) {
    bool grown = grow_buffer(ts->pos, capacity) && grow_buffer(ts->frames, capacity) &&
                 grow_buffer(ts->nodes, capacity) && grow_buffer(ts->walk_pos, capacity) &&
                 grow_buffer(ts->walk_frames, capacity) && grow_buffer(ts->top, capacity);
    if (grown) ts->capacity = capacity;
    return grown;
}

Walk full_walk(ThreadState* ts, const void* thread, const memlens_eval_state* eval,
               bool python_allocators) {
    int chain = 0;
    const int limit = eval ? kMaxHookedDepth : kMaxDepth;
    int max = std::min(ts->capacity, limit);
    int depth = memlens_walk_positions(thread, ts->walk_pos, ts->walk_frames, max, ts->top,
                                       kInnerFrames, ts->frames, ts->depth, &chain);
    bool cut_short = false;
    if (depth > max) {
        int capacity = ts->capacity;
        while (capacity < depth && capacity < limit) {
            capacity *= 2;
        }
        if (capacity > ts->capacity && grow_thread_state(ts, std::min(capacity, limit))) {
            max = std::min(ts->capacity, limit);
            depth = memlens_walk_positions(thread, ts->walk_pos, ts->walk_frames, max, ts->top,
                                           kInnerFrames, ts->frames, ts->depth, &chain);
        }
        cut_short = depth > max;
        depth = std::min(depth, max);
    }
    ts->base = (eval && eval->depth >= 1 && chain >= eval->depth && chain <= max)
                   ? chain - eval->depth
                   : -1;
    if (!eval && python_allocators) {
        ts->frames_walked += depth;
        if (ts->frames_walked >= g_retry_frames.load(std::memory_order_relaxed)) {
            ts->frames_walked = 0;
            // From the next call on, walks can be short; refused (a debugger's hook, or given
            // up this session), it is not asked again at every walk.
            if (!memlens_eval_hook_install(thread)) {
                back_off_eval_hook();
            }
        }
    }
    return {depth, 0, 0, true, cut_short};
}

Walk walk_stack_rest(ThreadState* ts, const memlens_moved_levels& moved, int read,
                     bool python_allocators) {
    const void* thread = moved.thread;
    uint32_t round = g_policy_round.load(std::memory_order_relaxed);
    if (ts->policy_round != round) {
        ts->policy_round = round;
        ts->frames_walked = 0;
        ts->frames_saved = 0;
        ts->calls_mark = -1;  // set at the next walk under the hook
    }
    if (read == 0) {
        return full_walk(ts, thread, nullptr, python_allocators);
    }
    const memlens_eval_state& eval = moved.eval;
    if (ts->calls_mark < 0) {
        ts->calls_mark = eval.calls;
    }
    weigh_eval_hook(ts, thread, eval);
    if (read == 2) {
        // Levels under the lowest counted frame since the last walk are as they were.
        int keep = ts->base + eval.low - 1;
        if (keep <= ts->depth) {
            if (moved.below == (keep > 0 ? ts->frames[keep - 1] : nullptr)) {
                ts->frames_saved += keep;
                return {keep + moved.fresh, keep, moved.fresh, false};
            }
            // Not where the last stack said: never expected, so walk in full and start over.
            g_walk_tallies.misses.fetch_add(1, std::memory_order_relaxed);
            ts->base = -1;
        }
    }
    return full_walk(ts, thread, &eval, python_allocators);
}

bool fast_walk_agrees(ThreadState* ts, const Walk& walk) {
    int chain = 0;
    int depth = memlens_walk_positions(ts->thread, ts->walk_pos, ts->walk_frames, ts->capacity,
                                       ts->top + walk.fresh, 0, ts->frames, 0, &chain);
    if (depth != walk.depth) {
        return false;
    }
    for (int rf = 0; rf < depth; ++rf) {
        const void* fast = rf < walk.keep ? ts->pos[rf] : ts->top[depth - 1 - rf].instr;
        if (fast != ts->walk_pos[depth - 1 - rf]) {
            return false;
        }
    }
    return true;
}

bool frame_at_level(int level, const void** frame, const void** code) {
    const void* thread = memlens_current_thread(1);
    std::vector<memlens_raw_frame> frames(kMaxDepth);
    int depth = memlens_innermost_frames(thread, frames.data(), kMaxDepth);
    if (level < 0 || level >= depth || depth >= kMaxDepth) {
        return false;
    }
    *frame = frames[static_cast<size_t>(depth - 1 - level)].frame;
    *code = frames[static_cast<size_t>(depth - 1 - level)].code;
    return true;
}

}  // namespace memlens
