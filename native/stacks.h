// A walk becomes a stack id: the levels that differ from the thread's previous stack are
// interned (through a per-thread leaf cache), under the session's root rule: the starting
// thread's stacks are cut above its root frame (and above its focus code, if any), and a stack
// under memlens's own code is kExcluded (DESIGN.md "memlens never counts itself"). A stack
// deeper than its walk read (walk.h's kMaxDepth: without the eval hook) lacks its root
// levels, so the root rule cannot be checked: its innermost levels are counted as read, as on
// any other thread.
#pragma once

#include <atomic>
#include <cstdint>

#include "state.h"
#include "walk.h"

namespace memlens {

// Under the lock: the stack id of a walk; a trie node, kNoStack for a thread without Python
// frames, kCutRoot or kExcluded for one that is not counted.
[[nodiscard]] int32_t intern_chain(const LockedTables& tables, ThreadState* ts, Walk walk,
                                   bool python_allocators);

// Bumped when a code object that appeared in a stack dies: the per-thread caches (which hold no
// serial numbers, to keep their hits free of lookups) are dropped when it moves.
extern std::atomic<unsigned long long> g_code_epoch;

}  // namespace memlens
