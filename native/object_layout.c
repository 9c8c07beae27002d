// Where a Python object's memory block starts: the allocator returned `object - pre-header`.
// The pre-header is the GC header for GC types, and from 3.11 the managed dict (3.12+: and
// weakref) pointers before it. Read from each version's installed internal headers
// (pycore_object.h's _PyType_PreHeaderSize, 3.11+; pycore_gc.h's PyGC_Head on 3.10), not
// guessed: this is the one other file besides frames.c that knows CPython's internals.
#define Py_BUILD_CORE_MODULE 1
#include <Python.h>

#include "object_layout.h"

#if PY_VERSION_HEX >= 0x030B0000
#include <internal/pycore_object.h>

size_t memlens_preheader_size(PyTypeObject* type) { return _PyType_PreHeaderSize(type); }
#else
#include <internal/pycore_gc.h>

// 3.10: PyType_GenericAlloc and _PyObject_GC_New put one PyGC_Head before a GC type's objects.
size_t memlens_preheader_size(PyTypeObject* type) {
    return PyType_IS_GC(type) ? sizeof(PyGC_Head) : 0;
}
#endif
