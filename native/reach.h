// Reachability at exit: which of the blocks still live when tracking stops the program can still
// reach ("referenced at exit") and which nothing reaches any more ("lost"), per stats row.
//
// Roots are what a normal program keeps to its end: the modules of sys.modules (so module
// globals, class attributes, functions' defaults and closures, caches held by them) and the
// running frames of every thread (their locals), as the caller passes them, and the C globals
// of every loaded object (as valgrind's "still reachable"). From the roots: the Python
// references (tp_traverse, over the census's graph), then, from the memory of every object
// reached, the words that are the start of another live block that is not an object (a list's
// item array, a dict's table, an exported buffer, a C extension's own malloc), transitively.
// Everything else still live is lost: dropped C buffers, reference cycles the collector did not
// free, objects held by a stray reference from C. docs/design.md, "Referenced and lost at exit".
#pragma once

#include <Python.h>

#include <cstdint>

#include "guard.h"
#include "objects.h"
#include "writer.h"

namespace memlens {

// GIL and guard held, after take_census on the same objects (no Python code ran since). `roots`
// is a list of objects in the census. Not complete when the deadline came first.
[[nodiscard]] ReferencedRecord mark_referenced(const Guard&, Census& census, PyObject* roots,
                                               int64_t deadline_ns);

}  // namespace memlens
