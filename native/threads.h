// Threads: each thread's ThreadState (walk buffers and caches, created on its first tracked
// event) and the session's threads table with their names.
//
// Names: a thread is first named from the OS (pthread_getname_np, which prctl(PR_SET_NAME)
// sets) unless that is just the process's name; Python names arrive through set_thread_name
// (the bindings name Python's threads at start, stop and snapshot, and the Tracker names each
// thread started while tracking). The sampler reads the OS names of live threads at every
// sample: a thread whose OS name changed gets a new entry, so what it allocates from then on is
// reported under its new name, as Memray does.
#pragma once

#include "state.h"

namespace memlens {

// Once per process, before the first session: thread-exit cleanup.
void init_threads();
// The calling thread's state, created on first use (nullptr when out of memory).
[[nodiscard]] ThreadState* new_thread_state(const Guard&);
[[nodiscard]] MEMLENS_ALWAYS_INLINE ThreadState* thread_state(const Guard& guard) {
    return t_state != nullptr ? t_state : new_thread_state(guard);
}
// Under the lock: makes ts part of the current session, and follows a rename of its thread.
void bind_thread(const LockedTables& tables, ThreadState* ts) noexcept;
// A new session: remember the process's own name (threads that only inherited it are unnamed).
void reset_thread_names();
// From the sampler: reads the OS names of the live threads, and records their changes.
void refresh_thread_names(const Guard&);

}  // namespace memlens
