// Where a Python object's memory block starts, and what a code object refers to
// (object_layout.c, the version-specific part).
#pragma once

#include <Python.h>

#ifdef __cplusplus
extern "C" {
#endif

// Bytes the allocator placed before objects of this type (GC header, managed dict/weakref).
size_t memlens_preheader_size(PyTypeObject* type);

// Calls visit(referent, arg) for each object a code object holds (its constants, names, line
// and exception tables, ...): code objects have no tp_traverse, since the collector does not
// track them, yet they hold a big library's line tables and constants.
void memlens_code_referents(PyObject* code, visitproc visit, void* arg);

#ifdef __cplusplus
}
#endif
