// Clocks of the tracker: wall time for the capture's meta, monotonic time for the timeline, and
// a cheap tick counter for the hot path.
#pragma once

#include <time.h>

#include <cstdint>

namespace memlens {

inline int64_t monotonic_ns() noexcept {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

inline int64_t wall_ns() noexcept {
    timespec ts{};
    clock_gettime(CLOCK_REALTIME, &ts);
    return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

// A new high-watermark is set on every allocation while the heap grows, and reading the TSC
// costs a few ns where clock_gettime costs tens. Converted to ns at encode time against
// CLOCK_MONOTONIC (x86 TSCs have been constant-rate for a decade).
inline int64_t ticks() noexcept {
#if defined(__x86_64__)
    return static_cast<int64_t>(__builtin_ia32_rdtsc());
#else
    return monotonic_ns();
#endif
}

}  // namespace memlens
