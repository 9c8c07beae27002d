// Where a Python object's memory block starts (object_layout.c, the version-specific part).
#pragma once

#include <Python.h>

#ifdef __cplusplus
extern "C" {
#endif

// Bytes the allocator placed before objects of this type (GC header, managed dict/weakref).
size_t memlens_preheader_size(PyTypeObject* type);

#ifdef __cplusplus
}
#endif
