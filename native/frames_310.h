// CPython 3.10's frames, for frames.c (its only includer): heap PyFrameObjects linked by f_back
// from tstate->frame, the position an int index (f_lasti, in code units) into the co_code bytes.
#include <frameobject.h>
#include <internal/pycore_interp.h>
#include <internal/pycore_pystate.h>

typedef PyFrameObject memlens_py_frame;

// Every frame on 3.10's chain has started (tstate->frame is set by the eval loop itself), and
// none is a C-stack shim.
#define MEMLENS_MID_CHAIN_INCOMPLETE 0

static inline memlens_py_frame* frame_top(PyThreadState* tstate) { return tstate->frame; }
static inline memlens_py_frame* frame_previous(memlens_py_frame* f) { return f->f_back; }
static inline int frame_incomplete(memlens_py_frame* f) {
    (void)f;
    return 0;
}
static inline const void* frame_code(memlens_py_frame* f) { return f->f_code; }

static inline const _Py_CODEUNIT* code_start(const PyCodeObject* co) {
    return (const _Py_CODEUNIT*)PyBytes_AS_STRING(co->co_code);
}
static inline int code_units(const PyCodeObject* co) {
    return (int)(PyBytes_GET_SIZE(co->co_code) / (Py_ssize_t)sizeof(_Py_CODEUNIT));
}
// A pointer into co_code, so that positions of every version are addresses in the code they
// belong to (f_lasti is -1 before the first instruction: one unit before it, as on 3.11).
static inline const void* frame_position(memlens_py_frame* f) {
    return code_start(f->f_code) + f->f_lasti;
}
// 3.10 has no co_qualname: functions are named by co_name.
static inline const void* code_name(const PyCodeObject* co) { return co->co_name; }

// 3.10 never leaves eval_frame NULL: the default is _PyEval_EvalFrameDefault itself.

#define MEMLENS_DEFAULT_EVAL_FRAME _PyEval_EvalFrameDefault
#define MEMLENS_HAVE_CODE_WATCHERS 0
