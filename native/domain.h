// The allocator families an allocation is charged to (the capture's `domain` column).
#pragma once

#include <cstdint>

namespace memlens {

enum Domain : uint8_t { kPythonDomain = 0, kMallocDomain = 1, kMmapDomain = 2 };

}  // namespace memlens
