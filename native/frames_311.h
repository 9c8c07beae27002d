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

#define MEMLENS_DEFAULT_EVAL_FRAME NULL
#define MEMLENS_HAVE_CODE_WATCHERS 0
