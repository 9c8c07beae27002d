// CPython 3.11's frames, for frames.c (its only includer): _PyInterpreterFrames linked by
// `previous` from tstate->cframe->current_frame, the position prev_instr.
#include <internal/pycore_frame.h>
#include <internal/pycore_interp.h>
#include <internal/pycore_pystate.h>

typedef _PyInterpreterFrame memlens_py_frame;

// A frame part way through its set-up (making cells, before RESUME) has no meaningful position
// yet. Only the innermost frames can be in that state: a frame calls nothing before it is
// complete. Checking just those keeps code objects out of the walk.
#define MEMLENS_MID_CHAIN_INCOMPLETE 0

static inline memlens_py_frame* frame_top(PyThreadState* tstate) {
    return tstate->cframe != NULL ? tstate->cframe->current_frame : NULL;
}
static inline memlens_py_frame* frame_previous(memlens_py_frame* f) { return f->previous; }
static inline int frame_incomplete(memlens_py_frame* f) { return _PyFrame_IsIncomplete(f); }
static inline const void* frame_code(memlens_py_frame* f) { return f->f_code; }
static inline const void* frame_position(memlens_py_frame* f) { return f->prev_instr; }

static inline const _Py_CODEUNIT* code_start(const PyCodeObject* co) {
    return _PyCode_CODE((PyCodeObject*)co);
}
static inline int code_units(const PyCodeObject* co) { return (int)Py_SIZE((PyObject*)co); }
static inline const void* code_name(const PyCodeObject* co) { return co->co_qualname; }

// Only 3.12+ counts C-level recursion apart from Python's: nothing to leave room for here.
static inline int c_recursion_low(PyThreadState* tstate) {
    (void)tstate;
    return 0;
}

static inline int frame_just_left(PyThreadState* tstate) {
    (void)tstate;
    return 0;  // a frame leaves the chain when the eval loop returns
}

#define MEMLENS_DEFAULT_EVAL_FRAME NULL
#define MEMLENS_HAVE_CODE_WATCHERS 0
