// CPython 3.12's frames, for frames.c (its only includer): as 3.11 (`cframe`, f_code,
// prev_instr), but each entry into the eval loop links a FRAME_OWNED_BY_CSTACK shim frame into
// the chain, and code objects have watchers.
#include <internal/pycore_frame.h>
#include <internal/pycore_interp.h>
#include <internal/pycore_pystate.h>

typedef _PyInterpreterFrame memlens_py_frame;

// Apart from the shims (skipped by frame_previous, never counted), only the innermost frames
// can be incomplete, as on 3.11.
#define MEMLENS_MID_CHAIN_INCOMPLETE 0

// The shims are the eval loop's bookkeeping, not Python frames: they are invisible to the walk
// (not even counted, so that a chain's length matches the eval hook's count of frames).
static inline memlens_py_frame* skip_shims(memlens_py_frame* f) {
    while (f != NULL && f->owner == FRAME_OWNED_BY_CSTACK) {
        f = f->previous;
    }
    return f;
}
static inline memlens_py_frame* frame_top(PyThreadState* tstate) {
    return tstate->cframe != NULL ? skip_shims(tstate->cframe->current_frame) : NULL;
}
static inline memlens_py_frame* frame_previous(memlens_py_frame* f) {
    return skip_shims(f->previous);
}
static inline int frame_incomplete(memlens_py_frame* f) { return _PyFrame_IsIncomplete(f); }
static inline const void* frame_code(memlens_py_frame* f) { return f->f_code; }
// The code unit before the next instruction: in a caller, the CALL's last inline cache entry,
// which the line table maps to the CALL's line.
static inline const void* frame_position(memlens_py_frame* f) { return f->prev_instr; }

// Each frame evaluated through the eval hook is a C-level entry into the eval loop, which 3.12+
// counts against a C recursion budget (C_RECURSION_LIMIT, 1,500 units) that inlined Python calls
// do not touch: the loop takes PY_EVAL_C_STACK_UNITS (2, ceval.c) at entry and gives them back
// at exit. The hook gives them back for the frame it runs, so that a recursion the program could
// make without memlens does not raise RecursionError through the hook; the C stack that hooked
// frames really use is bounded by the hook's own stack floor (frames.c), as on 3.11.
static inline void refund_eval_c_units(PyThreadState* tstate, int frames) {
    tstate->c_recursion_remaining += 2 * frames;  // PY_EVAL_C_STACK_UNITS, private to ceval.c
}
// Genuine C recursion (repr of a nested list...) still spends the budget: past half of it the
// hook steps aside.
static inline int c_recursion_low(PyThreadState* tstate) {
    return tstate->c_recursion_remaining < C_RECURSION_LIMIT / 2;
}

// 3.12+ unlinks a returning (or unwinding) frame and clears it inside the eval loop, before
// the eval hook hears of its return: in that window the loop's CSTACK shim is the top of the
// chain. Clearing can allocate (a frame object kept by a traceback makes its caller's), so a
// walk then counts the frame that just left as a level, as the hook still does.
static inline int frame_just_left(PyThreadState* tstate) {
    memlens_py_frame* raw = tstate->cframe != NULL ? tstate->cframe->current_frame : NULL;
    return raw != NULL && raw->owner == FRAME_OWNED_BY_CSTACK;
}

#define MEMLENS_DEFAULT_EVAL_FRAME NULL
#define MEMLENS_HAVE_CODE_WATCHERS 1
#define MEMLENS_EVAL_LOOP_SHIMS 1
