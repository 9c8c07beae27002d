// The tracker singleton: stack interning, per-(stack, thread, domain) aggregation with the
// exact O(1) high-watermark of DESIGN.md, the live-block table, the sampler thread
// (timeline and checkpoints), fork handling, and start/stop.
#include "tracker.h"

#include <pthread.h>
#include <fcntl.h>
#include <sched.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <unordered_map>

#include "flat_map.h"
#include "frames.h"
#include "hooks.h"
#include "pyalloc.h"
#include "small_blocks.h"
#include "writer.h"

namespace memlens {

__thread bool t_in_tracker __attribute__((tls_model("initial-exec"))) = false;
std::atomic<bool> g_tracking{false};

namespace {

constexpr uint32_t kNoRow = UINT32_MAX;
constexpr int kMaxDepth = 4096;          // deeper stacks keep their innermost frames
constexpr int kInnerFrames = 4;          // frames the walk reads in full (capacity is >= 64)
constexpr size_t kMaxTimelinePoints = 4000;
constexpr long kSampleIntervalNs = 10'000'000;  // 10 ms

int64_t monotonic_ns() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

int64_t wall_ns() {
    timespec ts{};
    clock_gettime(CLOCK_REALTIME, &ts);
    return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

// A cheap clock for the hot path: a new high-watermark is set on every allocation while the heap
// grows, and reading the TSC costs a few ns where clock_gettime costs tens. Converted to ns at
// encode time against CLOCK_MONOTONIC (x86 TSCs have been constant-rate for a decade).
int64_t ticks() {
#if defined(__x86_64__)
    return static_cast<int64_t>(__builtin_ia32_rdtsc());
#else
    return monotonic_ns();
#endif
}

// Resident set size from /proc/self/statm with plain syscalls (no stdio buffers).
int64_t read_rss() {
    static const long page = sysconf(_SC_PAGESIZE);
    int fd = ::open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return 0;
    }
    char buf[128];
    ssize_t n = ::read(fd, buf, sizeof(buf) - 1);
    ::close(fd);
    if (n <= 0) {
        return 0;
    }
    buf[n] = '\0';
    unsigned long size = 0;
    unsigned long resident = 0;
    if (std::sscanf(buf, "%lu %lu", &size, &resident) != 2) {
        return 0;
    }
    return static_cast<int64_t>(resident) * page;
}

// A spinlock, not a mutex: the critical sections are a few hash probes, and a forked child
// can simply reset it.
class SpinLock {
  public:
    void lock(const Guard&) {
        for (int spins = 0; flag_.test_and_set(std::memory_order_acquire); ++spins) {
            if (spins > 64) {
                sched_yield();
            }
        }
    }
    void unlock() { flag_.clear(std::memory_order_release); }
    void reset() { flag_.clear(std::memory_order_relaxed); }

  private:
    std::atomic_flag flag_ = ATOMIC_FLAG_INIT;
};

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
    int capacity;           // of every array below
    // The last interned stack, root first: level i's position, frame, and the trie node of
    // levels 0..i.
    int depth;
    const void** pos;
    const void** frames;
    int32_t* nodes;
    // One full walk, innermost first; top[] holds frames read in full, innermost first.
    const void** walk_pos;
    const void** walk_frames;
    memlens_raw_frame* top;
    int base;         // frames under those the eval hook counts, as of the last full walk (-1)
    const void* thread;     // the thread's PyThreadState, as found by the current walk
    uint32_t policy_round;  // the tallies below are for this round of g_policy_round
    int64_t frames_walked;  // by full walks without the hook
    int64_t frames_saved;   // levels fast walks did not read, since calls_mark
    int64_t calls_mark;     // the thread's calls through the hook when this tally began
    void* last_alloc;  // for temporaries: freed before this thread allocates again
    RowCacheEntry row_cache[kRowCacheSize];  // stack -> its rows, for this thread
    unsigned long long code_epoch;           // nodes and leaf_cache are valid at this epoch
    LeafEntry leaf_cache[kLeafCacheSize];
};

// What a walk found out. A full walk read every frame (walk_pos, walk_frames, and the innermost
// kInnerFrames in top); otherwise levels [0, keep) are known to be the last interned stack's
// and top[0..fresh) are the frames above them, innermost first.
struct Walk {
    int depth;
    int keep;
    int fresh;
    bool full;
};

__thread ThreadState* t_state __attribute__((tls_model("initial-exec"))) = nullptr;

struct Location {  // (code, bytecode position) -> frame, valid while the code lives
    const void* code;
    uint32_t code_serial;  // S.code_serials[code] when this was cached
    int32_t frame;
};

// Lines of one code object (S.line_pool[first, first + units)), for big code objects only.
struct CodeLines {
    const void* code;
    uint32_t code_serial;
    uint32_t first;
    int32_t units;
};
constexpr int kLineArrayMinUnits = 64;  // below this a direct lookup is as cheap

struct Row {
    int32_t stack;
    uint32_t thread;
    uint32_t domain;
    int64_t alloc_count, alloc_bytes;
    int64_t live_count, live_bytes;
    int64_t at_peak_count, at_peak_bytes;
    int64_t temp_count, temp_bytes;
    uint64_t touched;  // index of the last event that changed live_*
};

// 8 bytes, so that a live-table slot is 16: the table is the largest thing the hooks touch
// and its probes are cache misses.
struct LiveBlock {
    uint64_t size : 40;  // up to 1 TiB per block
    uint64_t row : 24;   // up to 16M (stack, thread, domain) rows
};
static_assert(sizeof(LiveBlock) == 8, "a live-table slot is 16 bytes");
constexpr uint32_t kMaxRows = (1u << 24) - 1;

struct MmapRegion {
    uint64_t length;
    uint32_t row;
    bool holds_count;  // a region split by munmap counts as one allocation
};

struct ThreadEntry {
    uint64_t id;  // pthread_self(), equal to threading.get_ident()
    std::string name;
    bool bound;  // a ThreadState uses it (else it was named before its first allocation)
    bool alive;
};

struct State {
    SpinLock lock;           // everything below but the timeline
    SpinLock timeline_lock;  // t_ms, t_heap, t_rss, the window and rss_peak
    TrackerOptions options;
    CaptureMeta meta;
    std::string output;  // where the final capture goes (CAP, or CAP.<pid> in a followed child)
    bool detached = false;  // a forked child that does not follow: stopped, data kept for stop()
    uint64_t session = 0;
    int64_t start_mono_ns = 0;

    // Interning.
    std::vector<std::string> strings;
    std::unordered_map<std::string, uint32_t> string_ids;  // cold path: new locations only
    std::vector<FrameRecord> frames;
    std::map<std::array<int64_t, 4>, int32_t> frame_ids;  // cold path too
    FlatMap<Location> locations;                          // key: prev_instr address
    FlatMap<CodeLines> code_lines;                        // key: code object address
    // Each code object seen in a stack gets a serial number, forgotten when it dies, so that
    // a new code object at the same address never matches entries cached for the old one.
    FlatMap<uint32_t> code_serials;  // key: code object address
    uint32_t next_code_serial = 0;
    std::vector<int32_t> line_pool;
    std::vector<StackNode> nodes;
    FlatMap<int32_t> node_ids;  // key: (parent + 2) << 32 | frame

    // Aggregation.
    std::vector<Row> rows;
    FlatMap<uint32_t> row_ids;  // key: (stack + 2) << 24 | thread << 2 | domain
    SmallBlocks small;          // live blocks of up to 512 bytes
    FlatMap<LiveBlock> live;    // the other live blocks, key: address
    std::map<uintptr_t, MmapRegion> mmaps;
    std::vector<ThreadEntry> threads;
    int64_t heap = 0;
    int64_t peak = 0;
    uint64_t event = 0;
    uint64_t peak_event = 0;
    int64_t peak_ticks = 0;
    int64_t start_ticks = 0;
    int64_t alloc_count = 0;
    int64_t alloc_bytes = 0;
    std::atomic<int64_t> heap_now{0};  // for the sampler, without the lock

    // Timeline: one point per window of `stride` samples (max over the window).
    std::vector<int64_t> t_ms, t_heap, t_rss;
    int stride = 1;
    int in_window = 0;
    int64_t window_heap = 0;
    int64_t window_rss = 0;
    int64_t rss_peak = 0;

    // Sampler thread.
    pthread_t sampler{};
    bool sampler_running = false;
    std::atomic<bool> sampler_stop{false};
    pthread_mutex_t sampler_mutex = PTHREAD_MUTEX_INITIALIZER;
    pthread_cond_t sampler_wake = PTHREAD_COND_INITIALIZER;
};

// Never destroyed: hooks may still run in other threads while the process exits.
State& S = *new State;
pthread_key_t g_thread_key;
pthread_once_t g_once = PTHREAD_ONCE_INIT;

class Locked {
  public:
    explicit Locked(const Guard& guard) { S.lock.lock(guard); }
    ~Locked() { S.lock.unlock(); }
    Locked(const Locked&) = delete;
    Locked& operator=(const Locked&) = delete;
};

// --- threads ---------------------------------------------------------------------------------

void free_frame_buffers(ThreadState* ts) {
    std::free(ts->pos);
    std::free(ts->frames);
    std::free(ts->nodes);
    std::free(ts->walk_pos);
    std::free(ts->walk_frames);
    std::free(ts->top);
}

void mark_thread_gone(void* arg) {
    Guard guard;
    auto* ts = static_cast<ThreadState*>(arg);
    {
        Locked locked(guard);
        if (ts->session == S.session && ts->thread_index < S.threads.size()) {
            S.threads[ts->thread_index].alive = false;
        }
    }
    t_state = nullptr;
    free_frame_buffers(ts);
    std::free(ts);
}

template <class T>
bool grow_buffer(T*& buffer, int capacity) {
    auto* grown = static_cast<T*>(std::realloc(buffer, sizeof(T) * static_cast<size_t>(capacity)));
    if (grown == nullptr) return false;
    buffer = grown;
    return true;
}

bool grow_thread_state(ThreadState* ts, int capacity) {
    bool grown = grow_buffer(ts->pos, capacity) && grow_buffer(ts->frames, capacity) &&
                 grow_buffer(ts->nodes, capacity) && grow_buffer(ts->walk_pos, capacity) &&
                 grow_buffer(ts->walk_frames, capacity) && grow_buffer(ts->top, capacity);
    if (grown) ts->capacity = capacity;
    return grown;
}

ThreadState* thread_state(const Guard&) {
    if (t_state != nullptr) {
        return t_state;
    }
    auto* ts = static_cast<ThreadState*>(std::calloc(1, sizeof(ThreadState)));
    if (ts == nullptr) {
        return nullptr;
    }
    if (!grow_thread_state(ts, 64)) {
        free_frame_buffers(ts);
        std::free(ts);
        return nullptr;
    }
    ts->base = -1;
    t_state = ts;
    pthread_setspecific(g_thread_key, ts);
    return ts;
}

uint32_t register_thread(const Guard&) {
    auto id = static_cast<uint64_t>(pthread_self());
    for (size_t i = S.threads.size(); i-- > 0;) {
        ThreadEntry& t = S.threads[i];
        if (t.id == id && !t.bound && t.alive) {
            t.bound = true;
            return static_cast<uint32_t>(i);
        }
    }
    auto index = static_cast<uint32_t>(S.threads.size());
    bool main_thread = syscall(SYS_gettid) == getpid();
    S.threads.push_back({id, main_thread ? "MainThread" : "Thread-" + std::to_string(index),
                         true, true});
    return index;
}

// Under the lock: make ts part of the current session.
void bind_thread(const Guard& guard, ThreadState* ts) {
    if (ts->session == S.session) {
        return;
    }
    ts->session = S.session;
    ts->depth = 0;
    ts->last_alloc = nullptr;
    for (RowCacheEntry& entry : ts->row_cache) {
        entry = {INT32_MIN, {kNoRow, kNoRow, kNoRow}};
    }
    std::memset(ts->leaf_cache, 0, sizeof(ts->leaf_cache));
    ts->thread_index = register_thread(guard);
}

// --- interning -------------------------------------------------------------------------------

uint32_t intern_string(const Guard&, const char* data, size_t size) {
    std::string text(data, size);
    auto found = S.string_ids.find(text);
    if (found != S.string_ids.end()) {
        return found->second;
    }
    auto index = static_cast<uint32_t>(S.strings.size());
    S.strings.push_back(text);
    S.string_ids.emplace(std::move(text), index);
    return index;
}

uint32_t intern_str_object(const Guard& guard, const void* str) {
    char buf[1024];
    size_t n = memlens_str_utf8(str, buf, sizeof(buf));
    return intern_string(guard, buf, n);
}

// The source line of a position; big code objects get their whole line table decoded once.
int code_line(const Guard&, const memlens_raw_frame& raw, uint32_t code_serial) {
    int unit = memlens_frame_unit(raw.code, raw.instr);
    int units = memlens_code_units(raw.code);
    if (unit < 0 || units < kLineArrayMinUnits) {
        return memlens_frame_line(raw.code, raw.instr);
    }
    bool inserted = false;
    CodeLines* entry = S.code_lines.insert(reinterpret_cast<uint64_t>(raw.code), &inserted);
    if (entry == nullptr) {
        return memlens_frame_line(raw.code, raw.instr);
    }
    if (inserted || entry->code_serial != code_serial || entry->units != units) {
        // A stale entry of the same size is rewritten in place, so exec'd code reusing one
        // address does not grow the pool.
        if (inserted || entry->units != units) {
            entry->first = static_cast<uint32_t>(S.line_pool.size());
            S.line_pool.resize(S.line_pool.size() + static_cast<size_t>(units));
        }
        entry->code = raw.code;
        entry->code_serial = code_serial;
        entry->units = units;
        memlens_code_lines(raw.code, &S.line_pool[entry->first], units);
    }
    return unit < units ? S.line_pool[entry->first + static_cast<uint32_t>(unit)]
                        : memlens_frame_line(raw.code, raw.instr);
}

// The serial number of a live code object (0 if the table is out of memory: never cached).
uint32_t code_serial(const Guard&, const void* code) {
    bool inserted = false;
    uint32_t* serial = S.code_serials.insert(reinterpret_cast<uint64_t>(code), &inserted);
    if (serial == nullptr) {
        return 0;
    }
    if (inserted) {
        *serial = ++S.next_code_serial;
    }
    return *serial;
}

// The frame id of a (code, position), cached by the position's address while its code lives.
int32_t location_frame(const Guard& guard, const memlens_raw_frame& raw) {
    uint32_t serial = code_serial(guard, raw.code);
    auto key = reinterpret_cast<uint64_t>(raw.instr) | 1;  // never 0
    Location* cached = S.locations.find(key);
    if (cached && serial != 0 && cached->code == raw.code && cached->code_serial == serial) {
        return cached->frame;
    }
    memlens_code_identity identity;
    memlens_identify_code(raw.code, &identity);
    uint32_t function = intern_str_object(guard, identity.name);
    uint32_t file = intern_str_object(guard, identity.filename);
    int line = code_line(guard, raw, serial);
    std::array<int64_t, 4> frame_key{function, file, line, identity.first_line};
    auto found = S.frame_ids.find(frame_key);
    int32_t frame;
    if (found != S.frame_ids.end()) {
        frame = found->second;
    } else {
        frame = static_cast<int32_t>(S.frames.size());
        S.frames.push_back({function, file, line, identity.first_line});
        S.frame_ids.emplace(frame_key, frame);
    }
    bool inserted = false;
    Location* slot = S.locations.insert(key, &inserted);
    if (slot) {
        *slot = Location{raw.code, serial, frame};
    }
    return frame;
}

int32_t intern_node(const Guard&, int32_t parent, int32_t frame) {
    uint64_t key = (static_cast<uint64_t>(parent + 2) << 32) | static_cast<uint32_t>(frame);
    bool inserted = false;
    int32_t* node = S.node_ids.insert(key, &inserted);
    if (node == nullptr) {
        return parent;  // out of memory: charge the caller
    }
    if (inserted) {
        *node = static_cast<int32_t>(S.nodes.size());
        S.nodes.push_back({parent, frame});
    }
    return *node;
}

// Code objects that appeared in a stack and died since tracking started: the per-thread caches
// (which hold no serial numbers, to keep their hits free of lookups) are dropped when it moves.
std::atomic<unsigned long long> g_code_epoch{0};

// A code object is about to be freed (GIL held; never inside a hook).
void forget_code(const void* code) {
    Guard guard;
    Locked locked(guard);
    uint32_t serial = 0;
    if (tracking() && S.code_serials.erase(reinterpret_cast<uint64_t>(code), &serial)) {
        g_code_epoch.fetch_add(1, std::memory_order_release);
    }
}

// How walks went (for tests and the bench): every walk is full or fast, and a fast walk whose
// frames did not line up with the last interned stack is counted as a miss (then walked in
// full). With MEMLENS_CHECK_WALKS set, every fast walk is also checked against a full one.
uint64_t g_fast_walks = 0;  // under the lock
uint64_t g_full_walks = 0;  // under the lock
std::atomic<uint64_t> g_walk_misses{0}, g_walk_errors{0}, g_hook_removals{0};
bool g_check_walks = false;

// Whether the eval hook pays (frames.h): a call through it costs about what reading
// kCallCostInFrames frames in a walk costs (measured: ~20 ns against ~1.3 ns). Each time a
// thread has made kPolicyCalls calls through it, the frames its fast walks skipped since are
// weighed against those calls; if they are worth less, the hook is removed, and installed again
// once full walks have read g_retry_frames frames (doubled after each removal).
constexpr int64_t kCallCostInFrames = 15;
constexpr int64_t kPolicyCalls = int64_t{1} << 17;
constexpr int64_t kFirstRetryFrames = int64_t{1} << 20;
std::atomic<int64_t> g_retry_frames{0};  // 0: install at the first walk
std::atomic<uint32_t> g_policy_round{0};  // bumped at each removal: per-thread tallies restart

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
        g_hook_removals.fetch_add(1, std::memory_order_relaxed);
    }
    ts->calls_mark = eval.calls;
    ts->frames_saved = 0;
}

// Outside the lock: every frame of the calling thread. `eval` is set while the hook is ours.
Walk full_walk(ThreadState* ts, const void* thread, const memlens_eval_state* eval) {
    int chain = 0;
    int depth = memlens_walk_positions(thread, ts->walk_pos, ts->walk_frames, ts->capacity,
                                       ts->top, kInnerFrames, ts->frames, ts->depth, &chain);
    if (depth > ts->capacity) {
        int capacity = ts->capacity;
        while (capacity < depth && capacity < kMaxDepth) {
            capacity *= 2;
        }
        if (grow_thread_state(ts, std::min(capacity, kMaxDepth))) {
            depth = memlens_walk_positions(thread, ts->walk_pos, ts->walk_frames, ts->capacity,
                                           ts->top, kInnerFrames, ts->frames, ts->depth, &chain);
        }
        depth = std::min(depth, ts->capacity);
    }
    ts->base = (eval && eval->depth >= 1 && chain >= eval->depth && chain <= ts->capacity)
                   ? chain - eval->depth
                   : -1;
    if (!eval && S.options.python_allocators) {
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
    return {depth, 0, 0, true};
}

// Outside the lock: the calling thread's stack, reading as few frames as the eval hook allows.
Walk walk_stack(ThreadState* ts, bool gil_held) {
    const void* thread = memlens_current_thread(gil_held);
    ts->thread = thread;
    uint32_t round = g_policy_round.load(std::memory_order_relaxed);
    if (ts->policy_round != round) {
        ts->policy_round = round;
        ts->frames_walked = 0;
        ts->frames_saved = 0;
        ts->calls_mark = -1;  // set at the next walk under the hook
    }
    memlens_eval_state eval{};
    if (!memlens_eval_counts(thread, &eval)) {
        return full_walk(ts, thread, nullptr);
    }
    if (ts->calls_mark < 0) {
        ts->calls_mark = eval.calls;
    }
    weigh_eval_hook(ts, thread, eval);
    if (ts->base >= 0 && eval.low >= 1) {
        // Levels under the lowest counted frame since the last walk are as they were.
        int keep = ts->base + eval.low - 1;
        int levels = eval.depth - eval.low + 1;
        if (keep <= ts->depth && keep + levels <= ts->capacity) {
            const void* below = nullptr;
            int fresh = memlens_walk_top(thread, levels, ts->top, ts->capacity, &below);
            if (below == (keep > 0 ? ts->frames[keep - 1] : nullptr)) {
                ts->frames_saved += keep;
                return {keep + fresh, keep, fresh, false};
            }
            // Not where the last stack said: never expected, so walk in full and start over.
            g_walk_misses.fetch_add(1, std::memory_order_relaxed);
            ts->base = -1;
        }
    }
    return full_walk(ts, thread, &eval);
}

// Under the lock: levels [from, depth) of the walk into the thread's stack; the raw frame of
// root-first level rf is top[depth - 1 - rf].
void intern_levels(const Guard& guard, ThreadState* ts, int from, int depth) {
    for (int rf = from; rf < depth; ++rf) {
        const memlens_raw_frame& raw = ts->top[depth - 1 - rf];
        int32_t parent = rf > 0 ? ts->nodes[rf - 1] : -1;
        auto slot = (reinterpret_cast<uintptr_t>(raw.instr) >> 1 ^
                     static_cast<uintptr_t>(parent) * 0x9E3779B1u) % kLeafCacheSize;
        LeafEntry& leaf = ts->leaf_cache[slot];
        if (leaf.instr != raw.instr || leaf.code != raw.code || leaf.parent != parent) {
            leaf = {raw.instr, raw.code, parent,
                    intern_node(guard, parent, location_frame(guard, raw))};
        }
        ts->nodes[rf] = leaf.node;
        ts->pos[rf] = raw.instr;
        ts->frames[rf] = raw.frame;
    }
}

// Under the lock: whether a fast walk saw what a full one sees (MEMLENS_CHECK_WALKS).
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

// Under the lock: the stack id of a walk, re-interning only the levels that differ from the
// thread's previous stack (a loop changes only its innermost one). Positions alone identify a
// level: each points into its (living) code object, and the caches are dropped when a code
// object dies.
int32_t intern_chain(const Guard& guard, ThreadState* ts, Walk walk) {
    unsigned long long code_epoch = g_code_epoch.load(std::memory_order_acquire);
    if (ts->code_epoch != code_epoch) {
        // A code object died: its address may now hold another one.
        ts->code_epoch = code_epoch;
        ts->depth = 0;
        std::memset(ts->leaf_cache, 0, sizeof(ts->leaf_cache));
    }
    if (!walk.full && walk.keep > ts->depth) {
        // The levels it kept were forgotten (a new session, a dead code object).
        walk = full_walk(ts, ts->thread, nullptr);
    }
    if (!walk.full && g_check_walks && !fast_walk_agrees(ts, walk)) {
        g_walk_errors.fetch_add(1, std::memory_order_relaxed);
    }
    const int depth = walk.depth;
    int same = 0;  // root-first levels equal to the previous stack's
    if (walk.full) {
        ++g_full_walks;
        const int common = std::min(depth, ts->depth);
        while (same < common && ts->walk_pos[depth - 1 - same] == ts->pos[same]) {
            ++same;
        }
        for (int rf = 0; rf < same; ++rf) {
            ts->frames[rf] = ts->walk_frames[depth - 1 - rf];  // the next walk's hint
        }
        // The walk read the innermost kInnerFrames in full already.
        int changed = depth - same;
        if (changed > kInnerFrames &&
            memlens_innermost_frames(ts->thread, ts->top, changed) != changed) {
            ts->depth = 0;  // cannot happen (the frames did not move); stay consistent anyway
            return -1;
        }
    } else {
        ++g_fast_walks;
        same = walk.keep;
        const int common = std::min(depth, ts->depth);
        while (same < common && ts->top[depth - 1 - same].instr == ts->pos[same]) {
            ts->frames[same] = ts->top[depth - 1 - same].frame;
            ++same;
        }
    }
    intern_levels(guard, ts, same, depth);
    ts->depth = depth;
    memlens_eval_commit();
    return depth ? ts->nodes[depth - 1] : -1;
}

uint32_t row_for(const Guard&, ThreadState* ts, int32_t stack, Domain domain) {
    RowCacheEntry& cached = ts->row_cache[static_cast<uint32_t>(stack) % kRowCacheSize];
    if (cached.stack == stack && cached.rows[domain] != kNoRow) {
        return cached.rows[domain];
    }
    if (cached.stack != stack) {
        cached = {stack, {kNoRow, kNoRow, kNoRow}};
    }
    uint64_t key = (static_cast<uint64_t>(stack + 2) << 24) |
                   (static_cast<uint64_t>(ts->thread_index & 0x3fffff) << 2) | domain;
    if (S.rows.size() >= kMaxRows) {
        return kNoRow;  // beyond any useful capture: drop the event rather than corrupt a row
    }
    bool inserted = false;
    uint32_t* row = S.row_ids.insert(key, &inserted);
    if (row == nullptr) {
        return kNoRow;
    }
    if (inserted) {
        *row = static_cast<uint32_t>(S.rows.size());
        Row fresh{};
        fresh.stack = stack;
        fresh.thread = ts->thread_index;
        fresh.domain = domain;
        S.rows.push_back(fresh);
    }
    cached.rows[domain] = *row;
    return *row;
}

// --- aggregation -----------------------------------------------------------------------------

// One event changing a row's live numbers: the O(1) high-watermark of DESIGN.md.
void change_live(const Guard&, uint32_t row_index, int64_t count, int64_t bytes) {
    Row& row = S.rows[row_index];
    uint64_t event = ++S.event;
    if (row.touched <= S.peak_event) {
        // The row has not moved since the peak: its value at the peak is its value now.
        row.at_peak_count = row.live_count;
        row.at_peak_bytes = row.live_bytes;
    }
    row.live_count += count;
    row.live_bytes += bytes;
    row.touched = event;
    S.heap += bytes;
    S.heap_now.store(S.heap, std::memory_order_relaxed);
    if (S.heap > S.peak) {
        S.peak = S.heap;
        S.peak_event = event;
        S.peak_ticks = ticks();
    }
}

void count_alloc(const Guard& guard, uint32_t row, int64_t size) {
    Row& r = S.rows[row];
    r.alloc_count += 1;
    r.alloc_bytes += size;
    S.alloc_count += 1;
    S.alloc_bytes += size;
    change_live(guard, row, 1, size);
}

// Under the lock: remove [start, end) from the mmap regions, subtracting from their rows.
void unmap_range(const Guard& guard, uintptr_t start, uintptr_t end) {
    auto it = S.mmaps.upper_bound(start);
    if (it != S.mmaps.begin()) {
        --it;
    }
    while (it != S.mmaps.end() && it->first < end) {
        uintptr_t region_start = it->first;
        uintptr_t region_end = region_start + it->second.length;
        if (region_end <= start) {
            ++it;
            continue;
        }
        MmapRegion region = it->second;
        it = S.mmaps.erase(it);
        uintptr_t cut_start = std::max(start, region_start);
        uintptr_t cut_end = std::min(end, region_end);
        bool count_moves = region.holds_count;
        if (region_start < cut_start) {
            S.mmaps[region_start] = {cut_start - region_start, region.row, count_moves};
            count_moves = false;
        }
        if (cut_end < region_end) {
            S.mmaps[cut_end] = {region_end - cut_end, region.row, count_moves};
            count_moves = false;
        }
        int64_t count = (region.holds_count && count_moves) ? -1 : 0;
        change_live(guard, region.row, count, -static_cast<int64_t>(cut_end - cut_start));
        it = S.mmaps.lower_bound(cut_end);
    }
}

size_t page_round(size_t length) {
    static const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    return (length + page - 1) / page * page;
}

// --- capture ---------------------------------------------------------------------------------

// The timeline has its own lock, so that the sampler never holds up an allocating thread (a
// spinlock holder descheduled on a busy machine makes every other thread spin).
class TimelineLocked {
  public:
    explicit TimelineLocked(const Guard& guard) { S.timeline_lock.lock(guard); }
    ~TimelineLocked() { S.timeline_lock.unlock(); }
    TimelineLocked(const TimelineLocked&) = delete;
    TimelineLocked& operator=(const TimelineLocked&) = delete;
};

void take_sample(const Guard& guard) {
    int64_t rss = read_rss();
    int64_t now_ms = (monotonic_ns() - S.start_mono_ns) / 1'000'000;
    TimelineLocked locked(guard);
    S.rss_peak = std::max(S.rss_peak, rss);
    S.window_heap = std::max(S.window_heap, S.heap_now.load(std::memory_order_relaxed));
    S.window_rss = std::max(S.window_rss, rss);
    if (++S.in_window < S.stride) {
        return;
    }
    S.t_ms.push_back(now_ms);
    S.t_heap.push_back(S.window_heap);
    S.t_rss.push_back(S.window_rss);
    S.in_window = 0;
    S.window_heap = 0;
    S.window_rss = 0;
    if (S.t_ms.size() >= kMaxTimelinePoints) {
        // Halve: each pair becomes one point with the pair's maxima; later windows are twice
        // as long, so the timeline always spans the whole run.
        size_t half = S.t_ms.size() / 2;
        for (size_t i = 0; i < half; ++i) {
            S.t_ms[i] = S.t_ms[2 * i];
            S.t_heap[i] = std::max(S.t_heap[2 * i], S.t_heap[2 * i + 1]);
            S.t_rss[i] = std::max(S.t_rss[2 * i], S.t_rss[2 * i + 1]);
        }
        S.t_ms.resize(half);
        S.t_heap.resize(half);
        S.t_rss.resize(half);
        S.stride *= 2;
    }
}

// Under the lock: when the high-watermark was reached, in ns since start.
int64_t peak_ns() {
    if (S.peak_event == 0) {
        return 0;
    }
    int64_t elapsed_ticks = ticks() - S.start_ticks;
    int64_t elapsed_ns = monotonic_ns() - S.start_mono_ns;
    if (elapsed_ticks <= 0) {
        return 0;
    }
    double ns_per_tick = static_cast<double>(elapsed_ns) / static_cast<double>(elapsed_ticks);
    return static_cast<int64_t>(static_cast<double>(S.peak_ticks - S.start_ticks) * ns_per_tick);
}

// Under the lock: the capture as of now.
std::string encode_locked(const Guard& guard, bool complete, std::optional<int> exit_code) {
    TimelineLocked timeline_locked(guard);  // always taken after S.lock, never before
    S.meta.end_ns = wall_ns();
    if (exit_code) {
        S.meta.exit_code = *exit_code;
    }
    CaptureView view;
    view.complete = complete;
    view.meta = &S.meta;
    view.strings = &S.strings;
    view.frames = &S.frames;
    view.stacks = &S.nodes;
    view.stats.reserve(S.rows.size());
    for (const Row& r : S.rows) {
        bool moved_after_peak = r.touched > S.peak_event;
        view.stats.push_back({r.stack, r.thread, r.domain, r.alloc_count, r.alloc_bytes,
                              moved_after_peak ? r.at_peak_count : r.live_count,
                              moved_after_peak ? r.at_peak_bytes : r.live_bytes, r.live_count,
                              r.live_bytes, r.temp_count, r.temp_bytes});
    }
    view.totals = {S.alloc_count, S.alloc_bytes, S.peak, peak_ns(), S.heap, S.rss_peak};
    view.timeline_t_ms = &S.t_ms;
    view.timeline_heap = &S.t_heap;
    view.timeline_rss = &S.t_rss;
    view.threads.reserve(S.threads.size());
    for (size_t i = 0; i < S.threads.size(); ++i) {
        view.threads.push_back({static_cast<uint32_t>(i), S.threads[i].name});
    }
    return encode_capture(view);
}

void write_checkpoint(const Guard& guard) {
    std::string bytes;
    {
        Locked locked(guard);
        if (!tracking()) {
            return;
        }
        bytes = encode_locked(guard, false, std::nullopt);
    }
    // A failed checkpoint is not fatal: the next one, or the final write, may succeed.
    (void)write_file_atomic(S.output + ".partial", bytes);
}

void* sampler_main(void*) {
    Guard guard;  // for its whole life: nothing this thread allocates is the program's
    int64_t interval_ns = static_cast<int64_t>(S.options.checkpoint_interval * 1e9);
    int64_t next_checkpoint = monotonic_ns() + interval_ns;
    while (true) {
        {
            // A condition variable, not a sleep: stop() wakes the sampler at once.
            pthread_mutex_lock(&S.sampler_mutex);
            timespec until{};
            clock_gettime(CLOCK_MONOTONIC, &until);
            until.tv_nsec += kSampleIntervalNs;
            if (until.tv_nsec >= 1'000'000'000) {
                until.tv_sec += 1;
                until.tv_nsec -= 1'000'000'000;
            }
            while (!S.sampler_stop.load() &&
                   pthread_cond_timedwait(&S.sampler_wake, &S.sampler_mutex, &until) == 0) {
            }
            pthread_mutex_unlock(&S.sampler_mutex);
        }
        if (S.sampler_stop.load()) {
            break;
        }
        take_sample(guard);
        if (interval_ns > 0 && !S.output.empty() && monotonic_ns() >= next_checkpoint) {
            write_checkpoint(guard);
            next_checkpoint = monotonic_ns() + interval_ns;
        }
    }
    return nullptr;
}

void start_sampler(const Guard&) {
    // Fresh each time: a forked child must not inherit them in a locked or waited-on state.
    pthread_mutex_init(&S.sampler_mutex, nullptr);
    pthread_condattr_t attributes;
    pthread_condattr_init(&attributes);
    pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC);
    pthread_cond_init(&S.sampler_wake, &attributes);
    pthread_condattr_destroy(&attributes);
    S.sampler_stop.store(false);
    S.sampler_running = pthread_create(&S.sampler, nullptr, sampler_main, nullptr) == 0;
}

void stop_sampler(const Guard&) {
    if (S.sampler_running) {
        pthread_mutex_lock(&S.sampler_mutex);
        S.sampler_stop.store(true);
        pthread_cond_signal(&S.sampler_wake);
        pthread_mutex_unlock(&S.sampler_mutex);
        pthread_join(S.sampler, nullptr);
        S.sampler_running = false;
    }
}

void clear_tables(const Guard&) {
    S.strings.clear();
    S.string_ids.clear();
    S.frames.clear();
    S.frame_ids.clear();
    S.locations.clear();
    S.code_lines.clear();
    S.code_serials.clear();
    S.line_pool.clear();
    S.nodes.clear();
    S.node_ids.clear();
    S.rows.clear();
    S.row_ids.clear();
    S.small.clear();
    S.live.clear();
    S.mmaps.clear();
    S.threads.clear();
    S.t_ms.clear();
    S.t_heap.clear();
    S.t_rss.clear();
    S.heap = S.peak = S.peak_ticks = S.alloc_count = S.alloc_bytes = 0;
    S.event = S.peak_event = 0;
    S.heap_now.store(0);
    S.stride = 1;
    S.in_window = 0;
    S.window_heap = S.window_rss = S.rss_peak = 0;
}

std::atomic<int64_t> g_last_peak{0};  // of the last session that finished

// Stops tracking and returns the final capture (also written to S.output if set).
std::string finish(const Guard& guard, std::optional<int> exit_code, bool restore, int* error) {
    {
        Locked locked(guard);
        g_tracking.store(false);
    }
    stop_sampler(guard);
    if (restore) {
        uninstall_hooks(guard);
        memlens_eval_hook_uninstall(memlens_current_thread(false));
        memlens_watch_code_deaths(nullptr);
        if (S.options.python_allocators) {
            restore_python_allocators();
        }
    }
    take_sample(guard);
    std::string bytes;
    {
        Locked locked(guard);
        bytes = encode_locked(guard, true, exit_code);
        g_last_peak.store(S.peak, std::memory_order_relaxed);
    }
    int write_error = 0;
    if (!S.output.empty() && !S.detached) {
        write_error = write_file_atomic(S.output, bytes);
        if (write_error == 0) {
            ::unlink((S.output + ".partial").c_str());
        }
    }
    if (error) {
        *error = write_error;
    }
    {
        Locked locked(guard);
        clear_tables(guard);
        S.detached = false;
    }
    return bytes;
}

// --- fork ------------------------------------------------------------------------------------

void before_fork() {
    Guard guard;
    S.lock.lock(guard);  // the child must never inherit the lock held by a thread it lacks
    S.timeline_lock.lock(guard);
}

void after_fork_parent() {
    S.timeline_lock.unlock();
    S.lock.unlock();
}

void after_fork_child() {
    Guard guard;
    S.lock.reset();
    S.timeline_lock.reset();
    S.sampler_running = false;  // threads do not survive fork
    if (!tracking()) {
        return;
    }
    if (S.options.follow_fork) {
        S.meta.pid = getpid();
        S.meta.exit_code.reset();
        if (!S.options.output.empty()) {
            S.output = S.options.output + "." + std::to_string(getpid());
        }
        start_sampler(guard);
    } else {
        g_tracking.store(false);
        S.detached = true;
        memlens_eval_hook_uninstall(memlens_current_thread(false));  // the child's calls need not pay
    }
}

void at_process_exit() {
    Guard guard;
    if (tracking()) {
        (void)finish(guard, std::nullopt, false, nullptr);
    }
}

void init_once() {
    pthread_key_create(&g_thread_key, mark_thread_gone);
    pthread_atfork(before_fork, after_fork_parent, after_fork_child);
    std::atexit(at_process_exit);
}

}  // namespace

// --- events ----------------------------------------------------------------------------------

void record_alloc(const Guard& guard, void* address, size_t size, Domain domain,
                  bool gil_held) noexcept {
    // No exception may cross a hook into C code (only bad_alloc can happen here).
    try {
        ThreadState* ts = thread_state(guard);
        if (ts == nullptr || address == nullptr) {
            return;
        }
        auto key = reinterpret_cast<uintptr_t>(address);
        // The block's record is a cache miss once the tables outgrow the cache: let it load
        // during the walk.
        if (size > SmallBlocks::kMaxSize) {
            S.live.prefetch(key);
        } else {
            S.small.prefetch(key);
        }
        Walk walk = walk_stack(ts, gil_held);
        Locked locked(guard);
        if (!tracking()) {
            return;
        }
        bind_thread(guard, ts);
        int32_t stack = intern_chain(guard, ts, walk);
        uint32_t row = row_for(guard, ts, stack, domain);
        if (row == kNoRow) {
            return;
        }
        // A block already recorded at this address was freed behind our back (through a
        // free() pointer copied before the hooks went in): it is gone.
        if (SmallBlocks::fits(key, size, row)) {
            SmallBlocks::Block replaced{};
            if (!S.small.insert(key, static_cast<uint32_t>(size), row, &replaced)) {
                return;
            }
            if (replaced.size != 0) {
                change_live(guard, replaced.row, -1, -static_cast<int64_t>(replaced.size));
            }
        } else {
            SmallBlocks::Block replaced{};
            if (S.small.erase(key, &replaced)) {
                change_live(guard, replaced.row, -1, -static_cast<int64_t>(replaced.size));
            }
            bool inserted = false;
            LiveBlock* block = S.live.insert(key, &inserted);
            if (block == nullptr) {
                return;
            }
            if (!inserted) {
                change_live(guard, block->row, -1, -static_cast<int64_t>(block->size));
            }
            block->size = std::min<uint64_t>(size, (uint64_t{1} << 40) - 1);
            block->row = row;
        }
        count_alloc(guard, row, static_cast<int64_t>(size));
        ts->last_alloc = address;
    } catch (...) {
        return;
    }
}

void prefetch_block(void* address) noexcept {
    S.small.prefetch(reinterpret_cast<uintptr_t>(address));
}

size_t record_free(const Guard& guard, void* address, bool count_temporary) noexcept {
    // No exception may cross a hook into C code (only bad_alloc can happen here).
    try {
        if (address == nullptr) {
            return 0;
        }
        Locked locked(guard);
        if (!tracking()) {
            return 0;
        }
        auto key = reinterpret_cast<uintptr_t>(address);
        uint32_t row = 0;
        int64_t size = 0;
        SmallBlocks::Block small{};
        LiveBlock block{};
        if (S.small.erase(key, &small)) {
            row = small.row;
            size = small.size;
        } else if (S.live.erase(key, &block)) {
            row = block.row;
            size = static_cast<int64_t>(block.size);
        } else {
            return 0;  // allocated before tracking started, or not by a hooked allocator
        }
        change_live(guard, row, -1, -size);
        ThreadState* ts = t_state;
        if (ts && ts->session == S.session && ts->last_alloc == address) {
            if (count_temporary) {
                Row& r = S.rows[row];
                r.temp_count += 1;
                r.temp_bytes += size;
            }
            ts->last_alloc = nullptr;
        }
        return static_cast<size_t>(size);
    } catch (...) {
        return 0;
    }
}

void record_mmap(const Guard& guard, void* address, size_t length) noexcept {
    // No exception may cross a hook into C code (only bad_alloc can happen here).
    try {
        ThreadState* ts = thread_state(guard);
        if (ts == nullptr) {
            return;
        }
        length = page_round(length);
        Walk walk = walk_stack(ts, false);
        Locked locked(guard);
        if (!tracking()) {
            return;
        }
        bind_thread(guard, ts);
        auto start = reinterpret_cast<uintptr_t>(address);
        unmap_range(guard, start, start + length);  // MAP_FIXED over an older mapping replaces it
        int32_t stack = intern_chain(guard, ts, walk);
        uint32_t row = row_for(guard, ts, stack, kMmapDomain);
        if (row == kNoRow) {
            return;
        }
        S.mmaps[start] = {length, row, true};
        count_alloc(guard, row, static_cast<int64_t>(length));
        ts->last_alloc = address;
    } catch (...) {
        return;
    }
}

void record_munmap(const Guard& guard, void* address, size_t length) noexcept {
    // No exception may cross a hook into C code (only bad_alloc can happen here).
    try {
        Locked locked(guard);
        if (!tracking() || S.mmaps.empty()) {
            return;
        }
        auto start = reinterpret_cast<uintptr_t>(address);
        unmap_range(guard, start, start + page_round(length));
    } catch (...) {
        return;
    }
}

void record_process_exit(const Guard& guard, std::optional<int> exit_code) noexcept {
    // No exception may cross a hook into C code (only bad_alloc can happen here).
    try {
        // A vfork()ed child (subprocess uses vfork) shares our memory and calls _exit() when
        // its exec fails: finishing there would stop the parent's tracking.
        if (tracking() && getpid() == S.meta.pid) {
            (void)finish(guard, exit_code, false, nullptr);
        }
    } catch (...) {
        return;
    }
}

// --- control ---------------------------------------------------------------------------------

StartError start(const Guard& guard, TrackerOptions options) {
    pthread_once(&g_once, init_once);
    if (tracking() || S.sampler_running) {
        return StartError::kAlreadyTracking;
    }
    {
        Locked locked(guard);
        clear_tables(guard);
        S.detached = false;
        S.session += 1;
        S.options = std::move(options);
        S.output = S.options.output;
        S.meta = CaptureMeta{};
        S.meta.argv = S.options.argv;
        S.meta.pid = getpid();
        S.meta.python_version = S.options.python_version;
        S.meta.platform = S.options.platform;
        S.meta.memlens_version = S.options.memlens_version;
        S.meta.python_allocators = S.options.python_allocators;
        S.meta.start_ns = wall_ns();
        S.start_mono_ns = monotonic_ns();
        S.start_ticks = ticks();
        g_fast_walks = g_full_walks = 0;
        g_walk_misses.store(0);
        g_walk_errors.store(0);
        g_hook_removals.store(0);
        g_retry_frames.store(0);
        g_policy_round.fetch_add(1);
        g_check_walks = std::getenv("MEMLENS_CHECK_WALKS") != nullptr;
        memlens_eval_hook_reset();
        g_tracking.store(true);
    }
    if (S.options.python_allocators) {
        install_python_allocators();
    }
    memlens_watch_code_deaths(forget_code);
    install_hooks(guard);
    start_sampler(guard);
    return StartError::kNone;
}

std::optional<std::string> stop(const Guard& guard, std::optional<int> exit_code,
                                int* write_error) {
    if (!tracking() && !S.detached) {
        return std::nullopt;
    }
    return finish(guard, exit_code, true, write_error);
}

std::optional<std::string> snapshot(const Guard& guard) {
    Locked locked(guard);
    if (!tracking()) {
        return std::nullopt;
    }
    return encode_locked(guard, false, std::nullopt);
}

bool is_tracking() noexcept { return tracking(); }

int64_t last_peak_bytes() noexcept { return g_last_peak.load(std::memory_order_relaxed); }

}  // namespace memlens

extern "C" size_t memlens_thread_stack_size(void) {
    memlens::Guard guard;  // reading the main thread's attributes opens /proc/self/maps
    pthread_attr_t attributes;
    if (pthread_getattr_np(pthread_self(), &attributes) != 0) {
        return 0;
    }
    void* low = nullptr;
    size_t size = 0;
    if (pthread_attr_getstack(&attributes, &low, &size) != 0) {
        size = 0;
    }
    pthread_attr_destroy(&attributes);
    return size;
}

namespace memlens {

WalkStats walk_stats(const Guard& guard) {
    Locked locked(guard);
    return {g_fast_walks,        g_full_walks,
            g_walk_misses.load(), g_walk_errors.load(),
            g_hook_removals.load(), memlens_eval_hook_installed(memlens_current_thread(false)) != 0,
            memlens_eval_hook_given_up() != 0};
}

void set_thread_name(const Guard& guard, uint64_t thread_id, const std::string& name) {
    Locked locked(guard);
    if (!tracking()) {
        return;
    }
    // The live thread with this id; else the latest that had it (named after it ended).
    ThreadEntry* latest = nullptr;
    for (size_t i = S.threads.size(); i-- > 0;) {
        ThreadEntry& t = S.threads[i];
        if (t.id == thread_id && t.alive) {
            t.name = name;
            return;
        }
        if (t.id == thread_id && latest == nullptr) {
            latest = &t;
        }
    }
    if (latest != nullptr) {
        latest->name = name;
        return;
    }
    S.threads.push_back({thread_id, name, false, true});
}

}  // namespace memlens
