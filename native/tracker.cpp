// The tracker singleton: the events the hooks report (each one walks its thread's stack, then
// takes the lock to intern it and aggregate), start and stop, fork and process exit.
#include "tracker.h"

#include <pthread.h>
#include <unistd.h>

#include <cstdlib>

#include "clock.h"
#include "events.h"
#include "hooks.h"
#include "pyalloc.h"
#include "sampler.h"
#include "stacks.h"
#include "state.h"
#include "threads.h"
#include "walk.h"

namespace memlens {

__thread bool t_in_tracker __attribute__((tls_model("initial-exec"))) = false;
std::atomic<bool> g_tracking{false};
State& S = *new State;

namespace {

pthread_once_t g_once = PTHREAD_ONCE_INIT;
std::atomic<int64_t> g_last_peak{0};  // of the last session that finished

size_t page_round(size_t length) {
    static const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    return (length + page - 1) / page * page;
}

// A code object is about to be freed (GIL held; never inside a hook).
void forget_code(const void* code) {
    Guard guard;
    LockedTables tables(guard, S.tables);
    if (tracking() && tables->interning.forget_code(code)) {
        g_code_epoch.fetch_add(1, std::memory_order_release);
    }
}

void clear_tables(const LockedTables& tables, const Guard& guard) {
    tables->interning.clear();
    tables->aggregate.clear();
    tables->threads.clear();
    tables->snapshots.clear();
    LockedTimeline timeline(guard, S.timeline);
    timeline->clear();
}

// Stops tracking and returns the final capture (also written to S.output if set).
CaptureBytes finish(const Guard& guard, std::optional<int> exit_code, bool restore, int* error) {
    {
        LockedTables tables(guard, S.tables);
        g_tracking.store(false);
    }
    uninstall_crash_flush();
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
    CaptureBytes bytes;
    {
        LockedTables tables(guard, S.tables);
        bytes = encode_session(tables, guard, true, exit_code);
        g_last_peak.store(tables->aggregate.peak(), std::memory_order_relaxed);
    }
    int write_error = 0;
    if (!S.output.empty() && !S.detached) {
        write_error = write_capture(S.output, bytes);
        if (write_error == 0) {
            ::unlink((S.output + ".partial").c_str());
        }
    }
    if (error) {
        *error = write_error;
    }
    {
        LockedTables tables(guard, S.tables);
        clear_tables(tables, guard);
        S.detached = false;
    }
    return bytes;
}

// --- fork ------------------------------------------------------------------------------------

void before_fork() {
    Guard guard;
    S.tables.hold_for_fork(guard);  // tables first, as everywhere
    S.timeline.hold_for_fork(guard);
}

void after_fork_parent() {
    S.timeline.release_after_fork();
    S.tables.release_after_fork();
}

void after_fork_child() {
    Guard guard;
    S.tables.reset_in_child();
    S.timeline.reset_in_child();
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
        memlens_eval_hook_uninstall(
            memlens_current_thread(false));  // the child's calls need not pay
    }
}

void at_process_exit() {
    Guard guard;
    if (tracking()) {
        (void)finish(guard, std::nullopt, false, nullptr);
    }
}

void init_once() {
    init_threads();
    pthread_atfork(before_fork, after_fork_parent, after_fork_child);
    std::atexit(at_process_exit);
}

// With the GIL, before tracking: what the starting thread counts (TrackerOptions).
SessionRoot session_root(const TrackerOptions& options) {
    SessionRoot root;
    root.thread_id = static_cast<uint64_t>(pthread_self());
    root.focus_code = options.focus_code;
    root.current_thread_only = options.current_thread_only;
    const void* code = nullptr;
    if (options.cut_depth > 0 && frame_at_level(options.cut_depth - 1, &root.cut_frame, &code) &&
        code == options.cut_code) {
        root.cut_depth = options.cut_depth;
    } else {
        root.cut_frame = nullptr;  // not the caller's stack: cut nothing rather than too much
    }
    return root;
}

}  // namespace

// --- events ----------------------------------------------------------------------------------

void record_alloc(const Guard& guard, void* address, size_t size, Allocator allocator,
                  bool gil_held) noexcept {
    record_alloc_inline(guard, address, size, allocator, gil_held);
}

void prefetch_block(void* address) noexcept {
    S.tables.unlocked_view().aggregate.prefetch_small(reinterpret_cast<uintptr_t>(address));
}

size_t record_free(const Guard& guard, void* address, bool count_temporary) noexcept {
    return record_free_inline(guard, address, count_temporary);
}

void record_mmap(const Guard& guard, void* address, size_t length, Allocator allocator) noexcept {
    // No exception may cross a hook into C code (only bad_alloc can happen here).
    try {
        ThreadState* ts = thread_state(guard);
        if (ts == nullptr) {
            return;
        }
        size_t requested = length;
        length = page_round(length);
        Walk walk = walk_stack(ts, false, S.options.python_allocators);
        LockedTables tables(guard, S.tables);
        if (!tracking()) {
            return;
        }
        bind_thread(tables, ts);
        auto start = reinterpret_cast<uintptr_t>(address);
        uint32_t row = counted_row(tables, ts, walk, kMmapDomain);
        if (row == kNoRow) {
            tables->aggregate.munmap(start, start + length);  // it replaced what was there
            return;
        }
        tables->aggregate.mmap(start, length, requested, row, allocator, &ts->window);
    } catch (...) {
        return;
    }
}

void record_munmap(const Guard& guard, void* address, size_t length) noexcept {
    // No exception may cross a hook into C code (only bad_alloc can happen here).
    try {
        LockedTables tables(guard, S.tables);
        if (!tracking() || !tables->aggregate.has_mappings()) {
            return;
        }
        auto start = reinterpret_cast<uintptr_t>(address);
        tables->aggregate.munmap(start, start + page_round(length));
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

void record_exec(const Guard& guard) noexcept {
    // No exception may cross a hook into C code (only bad_alloc can happen here).
    try {
        // subprocess's vfork()ed child execs in our memory: only this process's own exec counts.
        if (!tracking() || getpid() != S.meta.pid || S.output.empty() || S.detached) {
            return;
        }
        take_sample(guard);
        CaptureBytes bytes;
        {
            LockedTables tables(guard, S.tables);
            bytes = encode_session(tables, guard, true, std::nullopt);
        }
        if (write_capture(S.output, bytes) == 0) {
            ::unlink((S.output + ".partial").c_str());
        }
        // If the exec fails, tracking goes on and the final stop rewrites the file.
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
    SessionRoot root = session_root(options);
    reset_thread_names();
    {
        LockedTables tables(guard, S.tables);
        clear_tables(tables, guard);
        S.detached = false;
        tables->session += 1;
        tables->temporary_threshold = options.temporary_threshold;
        tables->root = root;
        tables->walks = WalkCounts{};
        tables->interning.set_own_code_dir(options.own_code_dir);
        S.options = std::move(options);
        S.output = S.options.output;
        S.meta = CaptureMeta{};
        S.meta.argv = S.options.argv;
        S.meta.pid = getpid();
        S.meta.python_version = S.options.python_version;
        S.meta.platform = S.options.platform;
        S.meta.memlens_version = S.options.memlens_version;
        S.meta.python_allocators = S.options.python_allocators;
        S.meta.temporary_threshold = S.options.temporary_threshold;
        S.meta.start_ns = wall_ns();
        S.start_mono_ns = monotonic_ns();
        S.start_ticks = ticks();
        reset_walk_policy(std::getenv("MEMLENS_CHECK_WALKS") != nullptr);
        memlens_eval_hook_reset();
        g_tracking.store(true);
    }
    if (S.options.python_allocators) {
        install_python_allocators();
    }
    memlens_watch_code_deaths(forget_code);
    install_hooks(guard);
    start_sampler(guard);
    if (!S.output.empty()) {
        install_crash_flush();
    }
    return StartError::kNone;
}

std::optional<CaptureBytes> stop(const Guard& guard, std::optional<int> exit_code,
                                 int* write_error) {
    if (!tracking() && !S.detached) {
        return std::nullopt;
    }
    return finish(guard, exit_code, true, write_error);
}

std::optional<CaptureBytes> snapshot(const Guard& guard) {
    LockedTables tables(guard, S.tables);
    if (!tracking()) {
        return std::nullopt;
    }
    return encode_session(tables, guard, false, std::nullopt);
}

bool is_tracking() noexcept { return tracking(); }

int64_t last_peak_bytes() noexcept { return g_last_peak.load(std::memory_order_relaxed); }

WalkStats walk_stats(const Guard& guard) {
    LockedTables tables(guard, S.tables);
    return {tables->walks.fast,
            tables->walks.full,
            g_walk_tallies.misses.load(),
            g_walk_tallies.errors.load(),
            g_walk_tallies.hook_removals.load(),
            memlens_eval_hook_installed(memlens_current_thread(false)) != 0,
            memlens_eval_hook_given_up() != 0};
}

}  // namespace memlens
