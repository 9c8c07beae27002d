// Python's allocator domains (RAW, MEM, OBJ) wrapped with PyMem_SetAllocator.
#pragma once

namespace memlens {

// Both need the GIL.
void install_python_allocators();
void restore_python_allocators();

}  // namespace memlens
