// Allocator interception in the process: GOT/PLT patching of every loaded ELF object.
#pragma once

#include "guard.h"

namespace memlens {

// Patches every loaded object (but ours, libc and ld.so); later dlopen()s are patched too.
void install_hooks(const Guard&);
// Puts back every patched slot.
void uninstall_hooks(const Guard&);

}  // namespace memlens
