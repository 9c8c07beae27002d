// The slow half of the tables' lock (lock.h): spin a little, then sleep on a futex.
#include "lock.h"

#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

namespace memlens {
namespace {

constexpr int kSpins = 64;                // the usual holder is done within a few hundred ns
constexpr long kWaitSliceNs = 1'000'000;  // bounds a sleep whose wake was missed (unlock())

inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    asm volatile("yield");
#endif
}

}  // namespace

void SpinLock::wait() noexcept {
    for (int spins = 0; spins < kSpins; ++spins) {
        cpu_relax();
        if (held_.load(std::memory_order_relaxed) == 0 &&
            held_.exchange(1, std::memory_order_acquire) == 0) {
            return;
        }
    }
    waiters_.fetch_add(1, std::memory_order_seq_cst);
    while (held_.exchange(1, std::memory_order_acquire) != 0) {
        // Sleeps only while the lock is still held (the kernel compares held_ with 1 first).
        timespec slice{0, kWaitSliceNs};
        syscall(SYS_futex, reinterpret_cast<int*>(&held_), FUTEX_WAIT_PRIVATE, 1, &slice, nullptr,
                0);
    }
    waiters_.fetch_sub(1, std::memory_order_relaxed);
}

void SpinLock::wake() noexcept {
    syscall(SYS_futex, reinterpret_cast<int*>(&held_), FUTEX_WAKE_PRIVATE, 1, nullptr, nullptr, 0);
}

}  // namespace memlens
