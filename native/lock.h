// "Under the lock" as a type: a Lockable<T> keeps its T out of reach but through a Locked<T>,
// which exists only while the lock is held. A function that needs the tables takes the
// Locked<T>, so an unlocked call does not compile.
#pragma once

#include <atomic>

#include "guard.h"

namespace memlens {

// A spinlock for the usual case: the critical sections are a few hash probes. A waiter that
// still finds it held after a short spin sleeps on a futex instead of yielding in a loop: a
// checkpoint holds the tables for tens of milliseconds, and a program thread spinning that long
// would burn a core the program could use. A forked child simply resets it.
class SpinLock {
  public:
    void lock(const Guard&) noexcept {
        if (__builtin_expect(held_.exchange(1, std::memory_order_acquire) != 0, false)) {
            wait();
        }
    }
    void unlock() noexcept {
        held_.store(0, std::memory_order_release);
        // Relaxed: a waiter whose wake this misses (the store still in flight when it looked)
        // sleeps at most kWaitSlice; the usual unlock stays a plain store.
        if (__builtin_expect(waiters_.load(std::memory_order_relaxed) != 0, false)) {
            wake();
        }
    }
    void reset() noexcept {
        held_.store(0, std::memory_order_relaxed);
        waiters_.store(0, std::memory_order_relaxed);
    }

  private:
    // Out of line (lock.cpp) and cold: the uncontended lock in the hooks keeps no registers
    // across a call (measured: ~20 instructions a free).
    __attribute__((cold)) void wait() noexcept;
    __attribute__((cold)) void wake() noexcept;

    std::atomic<int> held_{0};
    std::atomic<int> waiters_{0};
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
