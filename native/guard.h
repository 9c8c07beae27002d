// The thread-local re-entrancy guard every hook starts with.
//
// An allocation is counted once, at the outermost hook: while a thread holds the guard, any
// allocation it makes (pymalloc calling malloc, our own tables growing, the writer's buffers)
// passes straight through. Functions that touch the tracker's locked state take a `const Guard&`
// so that an unguarded call does not compile.
#pragma once

namespace memlens {

// initial-exec: a hook may run before a lazily allocated TLS block exists (and allocating it
// would call malloc from inside malloc).
extern __thread bool t_in_tracker __attribute__((tls_model("initial-exec")));

class Guard {
  public:
    Guard() noexcept : was_held_(t_in_tracker) { t_in_tracker = true; }
    ~Guard() { t_in_tracker = was_held_; }
    Guard(const Guard&) = delete;
    Guard& operator=(const Guard&) = delete;

    // True when this guard is nested: an outer hook of this thread is already counting.
    [[nodiscard]] bool nested() const noexcept { return was_held_; }
    [[nodiscard]] static bool held() noexcept { return t_in_tracker; }

  private:
    bool was_held_;
};

}  // namespace memlens
