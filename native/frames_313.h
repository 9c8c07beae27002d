// CPython 3.13's frames, for frames.c (its only includer): no cframe (tstate->current_frame),
// f_executable (not always a code object) and instr_ptr (the instruction executing now, where
// 3.11 and 3.12 keep the unit before the next one), CSTACK shims as in 3.12, code watchers.
#include <internal/pycore_frame.h>
#include <internal/pycore_interp.h>
#include <internal/pycore_pystate.h>

typedef _PyInterpreterFrame memlens_py_frame;

// A class call that runs __init__ inline links an incomplete _Py_InitCleanup frame under it:
// incomplete frames can sit anywhere in the chain.
#define MEMLENS_MID_CHAIN_INCOMPLETE 1

// The CSTACK shims (whose f_executable is None) are invisible to the walk, as on 3.12.
static inline memlens_py_frame* skip_shims(memlens_py_frame* f) {
    while (f != NULL && f->owner == FRAME_OWNED_BY_CSTACK) {
        f = f->previous;
    }
    return f;
}
static inline memlens_py_frame* frame_top(PyThreadState* tstate) {
    return skip_shims(tstate->current_frame);
}
static inline memlens_py_frame* frame_previous(memlens_py_frame* f) {
    return skip_shims(f->previous);
}
// Not a code object: nothing to charge to it, so it counts as a level but is never recorded.
static inline int frame_incomplete(memlens_py_frame* f) {
    return !PyCode_Check(f->f_executable) || _PyFrame_IsIncomplete(f);
}
static inline const void* frame_code(memlens_py_frame* f) { return f->f_executable; }
// A frame before its first instruction points at it (3.11 and 3.12: one unit before); such a
// frame is incomplete (not recorded) unless it is a generator's, which is never on a chain
// before it starts.
static inline const void* frame_position(memlens_py_frame* f) { return f->instr_ptr; }

// The eval loop's entry spends C recursion budget as on 3.12, which the hook gives back for the
// frame it runs (see frames_312.h).
static inline void refund_eval_c_units(PyThreadState* tstate, int frames) {
    tstate->c_recursion_remaining += 2 * frames;  // PY_EVAL_C_STACK_UNITS, private to ceval.c
}
static inline int c_recursion_low(PyThreadState* tstate) {
    return tstate->c_recursion_remaining < Py_C_RECURSION_LIMIT / 2;
}

// 3.12+ unlinks a returning (or unwinding) frame and clears it inside the eval loop, before
// the eval hook hears of its return: in that window the loop's CSTACK shim is the top of the
// chain. Clearing can allocate (a frame object kept by a traceback makes its caller's), so a
// walk then counts the frame that just left as a level, as the hook still does.
static inline int frame_just_left(PyThreadState* tstate) {
    memlens_py_frame* raw = tstate->current_frame;
    return raw != NULL && raw->owner == FRAME_OWNED_BY_CSTACK;
}

#define MEMLENS_DEFAULT_EVAL_FRAME NULL
#define MEMLENS_HAVE_CODE_WATCHERS 1
#define MEMLENS_EVAL_LOOP_SHIMS 1
