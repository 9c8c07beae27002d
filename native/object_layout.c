// Where a Python object's memory block starts: the allocator returned `object - pre-header`.
// And a code object's references, from each version's PyCodeObject (cpython/code.h).
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

// Skips the NULL fields (a cache not made yet); the weakref list is no reference.
static void visit_fields(PyObject* const* fields, size_t count, visitproc visit, void* arg) {
    for (size_t i = 0; i < count; ++i) {
        if (fields[i] != NULL) visit(fields[i], arg);
    }
}

void memlens_code_referents(PyObject* object, visitproc visit, void* arg) {
    PyCodeObject* code = (PyCodeObject*)object;
#if PY_VERSION_HEX >= 0x030B0000
    PyObject* const fields[] = {code->co_consts,
                                code->co_names,
                                code->co_exceptiontable,
                                code->co_localsplusnames,
                                code->co_localspluskinds,
                                code->co_filename,
                                code->co_name,
                                code->co_qualname,
                                code->co_linetable};
    visit_fields(fields, sizeof(fields) / sizeof(fields[0]), visit, arg);
#if PY_VERSION_HEX >= 0x030C0000
    if (code->_co_cached != NULL) {  // the co_code, co_varnames, ... made when asked for
        PyObject* const cached[] = {code->_co_cached->_co_code, code->_co_cached->_co_varnames,
                                    code->_co_cached->_co_cellvars, code->_co_cached->_co_freevars};
        visit_fields(cached, sizeof(cached) / sizeof(cached[0]), visit, arg);
    }
#else
    PyObject* const cached[] = {code->_co_code};
    visit_fields(cached, 1, visit, arg);
#endif
#else
    // 3.10's co_zombieframe is a free frame kept for the next call, not a reference.
    PyObject* const fields[] = {code->co_code,     code->co_consts,   code->co_names,
                                code->co_varnames, code->co_freevars, code->co_cellvars,
                                code->co_filename, code->co_name,     code->co_linetable};
    visit_fields(fields, sizeof(fields) / sizeof(fields[0]), visit, arg);
#endif
}
