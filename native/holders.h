// Holders: for the biggest groups of a census, the chain of references from a root to them
// (objgraph's back-reference chain, computed over the census's own object graph, which also
// holds the containers the collector untracks and the running frames).
#pragma once

#include <Python.h>

#include <cstdint>
#include <vector>

#include "objects.h"

namespace memlens {

enum class RootKind { kModule, kClass, kFrame, kUnreachable, kUnknown };

struct HolderChain {
    uint32_t group;  // index in census.groups
    RootKind root;
    int64_t count, bytes;  // the group's objects this chain holds
    // Borrowed, like the census's objects. chain[0] is one of the objects held, chain[1] their
    // direct holder; each next one holds the one before; the last is the root (module, class or
    // frame) when one was found. For an unreachable group: one cycle through its first object.
    std::vector<PyObject*> chain;
};

struct HolderSearch {
    std::vector<HolderChain> holders;
    bool complete = true;  // false: the deadline cut the search short
};

// Searches the first `groups` groups of the census, at most `per_group` holders each. The
// census's references (Census::referents) are released: call it last.
[[nodiscard]] HolderSearch find_holders(Census& census, size_t groups, size_t per_group,
                                        int64_t deadline_ns);

}  // namespace memlens
