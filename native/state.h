// The tracker's state, shared by its units (internal: the hooks and bindings see tracker.h).
//
// Everything the hooks change lives in `Tables`, behind one spinlock: reachable only through a
// Locked<Tables> (lock.h). The timeline has its own lock, so that the sampler never holds up an
// allocating thread (a spinlock holder descheduled on a busy machine makes every other thread
// spin); when both are needed, the tables' lock is always taken first.
#pragma once

#include <pthread.h>
#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "aggregate.h"
#include "frames.h"
#include "intern.h"
#include "lock.h"
#include "tracker.h"
#include "writer.h"

namespace memlens {

// (parent node, position) -> node, per thread: a loop alternates between a few positions
// (the FOR_ITER that makes an int, the CALL that makes an object), and this skips both the
// location and the trie lookups for them.
struct LeafEntry {
    const void* instr;
    const void* code;
    int32_t parent;
    int32_t node;
};
constexpr size_t kLeafCacheSize = 64;

// A stack's rows for one thread (by domain). Direct-mapped: a loop alternates between a few
// stacks, which a single "last stack" entry would keep evicting.
struct RowCacheEntry {
    int32_t stack;
    uint32_t rows[3];
};
constexpr size_t kRowCacheSize = 16;

// Per-thread state, reached through an initial-exec TLS pointer; created on the thread's
// first tracked event, freed by a pthread key destructor at thread exit.
struct ThreadState {
    uint64_t session;       // tracking session this state belongs to (0: none yet)
    uint32_t thread_index;  // index into the threads table
    uint64_t names_epoch;   // Tables::names_epoch when thread_index was last checked
    bool starting_thread;   // the thread that started the session (its stacks are cut)
    int capacity;           // of every array below
    // The last interned stack, root first: level i's position, frame, and the trie node of
    // levels 0..i.
    int depth;
    bool cut_short;  // deeper than its levels: the root rule was not applied (stacks.h)
    const void** pos;
    const void** frames;
    int32_t* nodes;
    // One full walk, innermost first; top[] holds frames read in full, innermost first.
    const void** walk_pos;
    const void** walk_frames;
    memlens_raw_frame* top;
    int base;            // frames under those the eval hook counts, as of the last full walk (-1)
    const void* thread;  // the thread's PyThreadState, as found by the current walk
    uint32_t policy_round;   // the tallies below are for this round of the walk policy
    int64_t frames_walked;   // by full walks without the hook
    int64_t frames_saved;    // levels fast walks did not read, since calls_mark
    int64_t calls_mark;      // the thread's calls through the hook when this tally began
    TemporaryWindow window;  // for temporaries: freed before this thread allocates again
    RowCacheEntry row_cache[kRowCacheSize];  // stack -> its rows, for this thread
    unsigned long long code_epoch;           // nodes and leaf_cache are valid at this epoch
    LeafEntry leaf_cache[kLeafCacheSize];
};

extern __thread ThreadState* t_state __attribute__((tls_model("initial-exec")));

struct ThreadEntry {
    uint64_t id;  // pthread_self(), equal to threading.get_ident()
    pid_t tid;    // the kernel's id (0: not known), for reading the OS name
    std::string name;
    std::string os_name;  // the OS name when last read
    bool bound;           // a ThreadState uses it (else it was named before its first allocation)
    bool alive;
    int32_t renamed_to;  // the entry that took over when the OS name changed (-1: none)
    bool os_named;       // the thread named itself through the OS: Python's name does not win
};

// What the starting thread counts (DESIGN.md "memlens never counts itself").
struct SessionRoot {
    uint64_t thread_id = 0;            // pthread_self() of the thread that started the session
    int cut_depth = 0;                 // its outermost levels cut from every stack
    const void* cut_frame = nullptr;   // the innermost cut frame: counting stops once it returns
    const void* focus_code = nullptr;  // count only stacks through a frame of this code
    bool current_thread_only = false;  // other threads are not counted at all
};

struct WalkCounts {
    uint64_t fast = 0;  // walks that read only the frames that may have moved
    uint64_t full = 0;
};

// Everything the hooks change: under the tracker's lock.
struct Tables {
    uint64_t session = 0;
    SessionRoot root;
    Interning interning;
    Aggregate aggregate;
    std::vector<ThreadEntry> threads;
    uint64_t names_epoch = 0;     // bumped when a thread's OS name changes
    int temporary_threshold = 1;  // this session's (TrackerOptions)
    WalkCounts walks;
    std::vector<SnapshotRecord> snapshots;  // object snapshots taken so far (objects.h)
};

// Timeline: one point per window of `stride` samples (max over the window).
struct Timeline {
    std::vector<int64_t> t_ms, t_heap, t_rss;
    int stride = 1;
    int in_window = 0;
    int64_t window_heap = 0;
    int64_t window_rss = 0;
    int64_t rss_peak = 0;

    void clear() {
        t_ms.clear();
        t_heap.clear();
        t_rss.clear();
        stride = 1;
        in_window = 0;
        window_heap = window_rss = rss_peak = 0;
    }
};

struct State {
    Lockable<Tables> tables;
    Lockable<Timeline> timeline;
    // Set at start (and in a followed child), read-only while tracking.
    TrackerOptions options;
    CaptureMeta meta;
    std::string output;     // where the final capture goes (CAP, or CAP.<pid> in a followed child)
    bool detached = false;  // a forked child that does not follow: stopped, data kept for stop()
    int64_t start_mono_ns = 0;
    int64_t start_ticks = 0;

    // Sampler thread.
    pthread_t sampler{};
    bool sampler_running = false;
    std::atomic<bool> sampler_stop{false};
    pthread_mutex_t sampler_mutex = PTHREAD_MUTEX_INITIALIZER;
    pthread_cond_t sampler_wake = PTHREAD_COND_INITIALIZER;
    // A fatal signal asked the sampler for a last checkpoint (sampler.h: crash flush).
    std::atomic<bool> flush_requested{false};
    std::atomic<bool> flush_done{false};
};

// Never destroyed: hooks may still run in other threads while the process exits.
extern State& S;

using LockedTables = Locked<Tables>;
using LockedTimeline = Locked<Timeline>;

}  // namespace memlens
