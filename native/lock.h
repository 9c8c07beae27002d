// "Under the lock" as a type: a Lockable<T> keeps its T out of reach but through a Locked<T>,
// which exists only while the lock is held. A function that needs the tables takes the
// Locked<T>, so an unlocked call does not compile.
#pragma once

#include <sched.h>
#include <time.h>

#include <atomic>

#include "guard.h"

namespace memlens {

// A spinlock, not a mutex: the critical sections are a few hash probes, and a forked child
// can simply reset it.
class SpinLock {
  public:
    void lock(const Guard&) noexcept {
        for (int spins = 0; flag_.test_and_set(std::memory_order_acquire); ++spins) {
            if (spins > kYields) {
                // Held long (an object snapshot's mark, ~0.1 s on sympy): yielding on an idle
                // core returned at once, and the sampler thread burned 0.13 s of CPU waiting.
                timespec pause{0, 50'000};
                nanosleep(&pause, nullptr);
            } else if (spins > 64) {
                sched_yield();
            }
        }
    }
    void unlock() noexcept { flag_.clear(std::memory_order_release); }
    void reset() noexcept { flag_.clear(std::memory_order_relaxed); }

  private:
    static constexpr int kYields = 64 + 1000;  // ~1 ms of yields, then naps of 50 us
    std::atomic_flag flag_ = ATOMIC_FLAG_INIT;
};

template <class T>
class Locked;

template <class T>
class Lockable {
  public:
    Lockable() = default;
    Lockable(const Lockable&) = delete;
    Lockable& operator=(const Lockable&) = delete;

    // Reads that are racy by design and never fault (prefetch hints, atomics): no lock, and
    // nothing that could be modified.
    [[nodiscard]] const T& unlocked_view() const noexcept { return value_; }

    // fork(): the parent takes the lock so that the child never inherits it held by a thread
    // it does not have; the parent then releases it and the child resets it.
    void hold_for_fork(const Guard& guard) noexcept { lock_.lock(guard); }
    void release_after_fork() noexcept { lock_.unlock(); }
    void reset_in_child() noexcept { lock_.reset(); }

  private:
    friend class Locked<T>;
    SpinLock lock_;
    T value_;
};

template <class T>
class Locked {
  public:
    Locked(const Guard& guard, Lockable<T>& owner) noexcept : owner_(owner) {
        owner_.lock_.lock(guard);
    }
    ~Locked() { owner_.lock_.unlock(); }
    Locked(const Locked&) = delete;
    Locked& operator=(const Locked&) = delete;

    T* operator->() const noexcept { return &owner_.value_; }
    T& operator*() const noexcept { return owner_.value_; }

  private:
    Lockable<T>& owner_;
};

}  // namespace memlens
