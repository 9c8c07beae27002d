// The tracker: one per process. Hooks report events here; the bindings start and stop it.
//
// Every entry point takes a `const Guard&`: the caller already holds the thread's re-entrancy
// guard, so allocations made while the tracker's lock is held pass through. Inside, the tables
// are reachable only through the lock (lock.h, state.h).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "domain.h"
#include "guard.h"
#include "writer.h"

namespace memlens {

struct TrackerOptions {
    std::string output;  // empty: keep the capture in memory only
    bool python_allocators = true;
    bool follow_fork = false;
    double checkpoint_interval = 1.0;  // seconds; 0 = no checkpoints
    std::vector<std::string> argv;
    std::string memlens_version;
    std::string python_version;
    std::string platform;
    // What the starting thread counts (DESIGN.md "memlens never counts itself"): its outermost
    // `cut_depth` frames are cut from every stack (the innermost of them must run `cut_code`,
    // else nothing is cut), and only while they are there is anything it allocates counted.
    int cut_depth = 0;
    const void* cut_code = nullptr;
    // Files under this directory are memlens's own code: never in a stack; what is allocated
    // under them is not counted.
    std::string own_code_dir;
    // If set, the starting thread counts only stacks through a frame of this code object, and
    // its stacks begin there.
    const void* focus_code = nullptr;
    bool current_thread_only = false;  // other threads are not counted
    // A block freed within this many of its thread's allocations is temporary (Memray's
    // --temporary-allocation-threshold, same default); at most TemporaryWindow::kMaxThreshold.
    int temporary_threshold = 1;
};

// Hot-path check: relaxed, the hooks re-check under the lock.
extern std::atomic<bool> g_tracking;
[[nodiscard]] inline bool tracking() noexcept { return g_tracking.load(std::memory_order_relaxed); }

// --- events (from hooks) ---
// allocator: what made it (its domain follows). gil_held: the caller is known to hold the GIL
// (the MEM and OBJ domains), which makes finding the thread's frames cheaper.
void record_alloc(const Guard&, void* address, size_t size, Allocator allocator,
                  bool gil_held = false) noexcept;
// Returns the size of the block if it was tracked. `count_temporary` is false for realloc.
size_t record_free(const Guard&, void* address, bool count_temporary) noexcept;
// A hint that address is about to be freed: its record starts loading into the cache.
void prefetch_block(void* address) noexcept;
void record_mmap(const Guard&, void* address, size_t length, Allocator allocator) noexcept;
void record_munmap(const Guard&, void* address, size_t length) noexcept;
// The process is about to end (_exit, atexit): write the capture now.
void record_process_exit(const Guard&, std::optional<int> exit_code) noexcept;
// The process is about to exec (the image is replaced, nothing after it runs): writes the
// complete capture so far, and keeps tracking in case the exec fails.
void record_exec(const Guard&) noexcept;

// --- control (from the bindings, with the GIL held) ---
enum class StartError { kNone, kAlreadyTracking };
[[nodiscard]] StartError start(const Guard&, TrackerOptions options);
// The final capture; empty optional when not tracking. write_error: errno of writing output.
[[nodiscard]] std::optional<CaptureBytes> stop(const Guard&, std::optional<int> exit_code,
                                               int* write_error);
[[nodiscard]] std::optional<CaptureBytes> snapshot(const Guard&);
[[nodiscard]] bool is_tracking() noexcept;
// The high-watermark of the last session that stopped, in bytes (0 before any).
[[nodiscard]] int64_t last_peak_bytes() noexcept;
void set_thread_name(const Guard&, uint64_t thread_id, const std::string& name);
// A live thread was renamed (Python's Thread.name): what it allocates from now on goes under the
// new name, what it allocated before keeps the old one.
void rename_thread(const Guard&, uint64_t thread_id, const std::string& name);
// A thread's OS name was just set (prctl, pthread_setname_np): what it allocates from now on
// goes under the new name.
void record_thread_rename(const Guard&, uint64_t thread_id) noexcept;

// How the stack walks of the current (or last) session went: fast ones read only the frames
// that may have moved (thanks to the eval hook, frames.h); misses are fast walks that had to start
// over; errors are fast walks a full walk disagreed with (checked only with MEMLENS_CHECK_WALKS
// set: for tests).
struct WalkStats {
    uint64_t fast, full, misses, errors;
    uint64_t hook_removals;  // times the eval hook did not pay and was removed
    bool hooked;             // the eval hook is installed now
    bool hook_given_up;      // removed for the session: hooked frames used too much C stack
};
[[nodiscard]] WalkStats walk_stats(const Guard&);

}  // namespace memlens
