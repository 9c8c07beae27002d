// The Python stack of the calling thread, read straight from the interpreter's frame chain.
//
// This is the only file that knows CPython's internals, and its version-specific part is the
// one frames_3XX.h it includes: the frame type and how to follow, classify and read a frame.
// Everything here is written once against those accessors. It must never allocate, take the
// GIL or run Python code: it is called from inside malloc hooks, possibly on a thread that
// released the GIL (numpy).
//
// Py_BUILD_CORE_MODULE (which implies Py_BUILD_CORE) gives the internal headers as an extension
// module sees them: on 3.12+ _PyThreadState_GET then calls an exported function instead of
// reading libpython's thread-local, which is not exported.
#define Py_BUILD_CORE_MODULE 1
#include <Python.h>

#include "frames.h"

#if PY_VERSION_HEX >= 0x030A0000 && PY_VERSION_HEX < 0x030B0000
#include "frames_310.h"
#elif PY_VERSION_HEX >= 0x030B0000 && PY_VERSION_HEX < 0x030C0000
#include "frames_311.h"
#elif PY_VERSION_HEX >= 0x030C0000 && PY_VERSION_HEX < 0x030D0000
#include "frames_312.h"
#elif PY_VERSION_HEX >= 0x030D0000 && PY_VERSION_HEX < 0x030E0000
#include "frames_313.h"
#else
// CMakeLists.txt refuses these first, with the same message.
#error \
    "memlens supports CPython 3.10, 3.11, 3.12 and 3.13 (its frame layer reads their internal frame structs)"
#endif

#if PY_VERSION_HEX >= 0x030B0000
// 3.11+: the bytecode is inside the code object, which has a qualified name.
static inline const _Py_CODEUNIT* code_start(const PyCodeObject* co) {
    return _PyCode_CODE((PyCodeObject*)co);
}
static inline int code_units(const PyCodeObject* co) { return (int)Py_SIZE((PyObject*)co); }
static inline const void* code_name(const PyCodeObject* co) { return co->co_qualname; }
#endif

#ifndef MEMLENS_EVAL_LOOP_SHIMS
// Before 3.12 a frame leaves the chain when the eval loop returns, and C-level recursion
// shares Python's budget: nothing to count or to leave room for.
static inline int frame_just_left(PyThreadState* tstate) {
    (void)tstate;
    return 0;
}
static inline int c_recursion_low(PyThreadState* tstate) {
    (void)tstate;
    return 0;
}
static inline void refund_eval_c_units(PyThreadState* tstate, int frames) {
    (void)tstate;
    (void)frames;
}
#endif

// The thread's innermost complete frame, or NULL; *skipped counts the incomplete ones above it.
// A frame part way through its set-up (before RESUME) has no meaningful position yet.
static memlens_py_frame* innermost_frame(const void* thread, int* skipped) {
    PyThreadState* tstate = (PyThreadState*)thread;
    if (tstate == NULL) {
        return NULL;
    }
    *skipped += frame_just_left(tstate);
    memlens_py_frame* f = frame_top(tstate);
    while (f != NULL && frame_incomplete(f)) {
        f = frame_previous(f);
        ++*skipped;
    }
    return f;
}

static inline void read_frame(memlens_py_frame* f, memlens_raw_frame* out) {
    out->frame = f;
    out->code = frame_code(f);
    out->instr = frame_position(f);
}

static inline void record_frame(memlens_py_frame* f, int depth, const void** out,
                                const void** frames, int max, memlens_raw_frame* inner,
                                int inner_max) {
    if (depth < max) {
        out[depth] = frame_position(f);
        frames[depth] = f;
    }
    if (depth < inner_max) {
        read_frame(f, &inner[depth]);
    }
}

// The level (innermost first) of frame f in the previous walk (known[] is root first), trying
// `hint` (the same depth) first, then the innermost `span` levels; -1 if none.
static int find_known(const void* const* known, int known_depth, const void* f, int hint,
                      int span) {
    if (hint < known_depth && known[known_depth - 1 - hint] == f) {
        return hint;
    }
    for (int j = 0; j < known_depth && j < span; j++) {
        if (known[known_depth - 1 - j] == f) {
            return j;
        }
    }
    return -1;
}

// Whether the running interpreter is the minor version whose structs this file was compiled
// against. An extension's ABI tag already keeps other versions from importing it; should one
// load anyway (a renamed .so), no frame is ever read: allocations are charged to no Python
// stack instead of the program crashing. Py_GetVersion() formats into a static buffer.
static int g_runtime_matches = -1;  // racy but idempotent

// Out of line: the check runs once, and the hot callers then need no stack frame.
static __attribute__((noinline, cold)) int check_runtime_matches_build(void) {
    const char* running = Py_GetVersion();
    char built[16];
    int n = snprintf(built, sizeof(built), "%d.%d.", PY_MAJOR_VERSION, PY_MINOR_VERSION);
    g_runtime_matches = strncmp(running, built, (size_t)n) == 0;
    return g_runtime_matches;
}

static inline int runtime_matches_build(void) {
    int matches = g_runtime_matches;
    return matches >= 0 ? matches : check_runtime_matches_build();
}

static inline const void* current_thread(int gil_held) {
    if (!runtime_matches_build()) {
        return NULL;  // every function below reads nothing for a NULL thread
    }
    if (gil_held) {
        return _PyThreadState_GET();  // the GIL holder's: cheaper than a TSS lookup
    }
    // Not PyThreadState_Get(): that needs the GIL. This reads the thread's TSS slot, which is
    // set for every thread Python knows, holding the GIL or not.
    return PyGILState_GetThisThreadState();
}

const void* memlens_current_thread(int gil_held) { return current_thread(gil_held); }

int memlens_walk_positions(const void* thread, const void** out, const void** frames, int max,
                           memlens_raw_frame* inner, int inner_max, const void* const* known,
                           int known_depth, int* chain_length) {
    int depth = 0;
    // A loop's stack differs from the last walk's in its innermost levels. The innermost frame
    // is often new (a call), so its search looks only near the top (a return of a few levels);
    // the next frame's searches the whole previous walk.
    int searches = 2;
    const int kFirstSpan = 8;
    int incomplete = 0;
    memlens_py_frame* f = innermost_frame(thread, &incomplete);
    while (f != NULL) {
        if (MEMLENS_MID_CHAIN_INCOMPLETE && frame_incomplete(f)) {
            ++incomplete;  // a level of the chain, with nothing to record
            f = frame_previous(f);
            continue;
        }
        if (depth >= max) {
            // Deeper than the caller keeps: say "more" without reading the rest (a recursion
            // tens of thousands deep would cost that much on every allocation).
            *chain_length = depth + 1 + incomplete;
            return depth + 1;
        }
        int j = -1;
        if (searches > 0) {
            int span = searches-- == 2 ? kFirstSpan : known_depth;
            j = find_known(known, known_depth, f, depth, span);
        }
        if (j < 0) {
            record_frame(f, depth++, out, frames, max, inner, inner_max);
            f = frame_previous(f);
            continue;
        }
        // f is the previous walk's frame at level j: follow that walk's frames, checking each
        // link against the real one. The next frame's address is known before this frame's
        // link is read, so the reads overlap (the branch predicts a match) instead of waiting
        // on one pointer after another; only a checked link is ever dereferenced. The first
        // link that differs, or max, is where the plain walk goes on (a stack deeper than max
        // whose innermost frames moved by one still follows the previous walk's).
        for (;;) {
            record_frame(f, depth++, out, frames, max, inner, inner_max);
            memlens_py_frame* next = frame_previous(f);
            const void* expected = ++j < known_depth ? known[known_depth - 1 - j] : NULL;
            if (next != expected || next == NULL || depth >= max) {
                f = next;
                break;
            }
            f = (memlens_py_frame*)expected;
        }
    }
    *chain_length = depth + incomplete;
    return depth;
}

// The innermost `levels` frames, incomplete ones included: the complete ones written to out[]
// innermost first (at most max) and counted in the result; *below is the frame under them.
static inline int walk_top(const void* thread, int levels, memlens_raw_frame* out, int max,
                           const void** below) {
    PyThreadState* tstate = (PyThreadState*)thread;
    memlens_py_frame* f = NULL;
    if (tstate != NULL) {
        levels -= frame_just_left(tstate);  // a level with nothing to read (see frames_312.h)
        f = frame_top(tstate);
    }
    int n = 0;
    for (; f != NULL && levels > 0; f = frame_previous(f), levels--) {
        if (frame_incomplete(f)) {
            continue;
        }
        if (n < max) {
            read_frame(f, &out[n]);
        }
        n++;
    }
    *below = f;
    return n;
}

int memlens_innermost_frames(const void* thread, memlens_raw_frame* out, int count) {
    int n = 0;
    int skipped = 0;
    for (memlens_py_frame* f = innermost_frame(thread, &skipped); f != NULL && n < count;
         f = frame_previous(f)) {
        if (MEMLENS_MID_CHAIN_INCOMPLETE && frame_incomplete(f)) {
            continue;
        }
        read_frame(f, &out[n++]);
    }
    return n;
}

// --- the evaluation hook ---------------------------------------------------------------------

// Bumped at each install and removal: frames evaluated under an older install are not counted
// (frames may have been inlined above them while the hook was away).
static unsigned g_eval_epoch = 1;

// Zero at each thread's start (frames.h).
__thread memlens_eval_thread memlens_t_eval __attribute__((tls_model("initial-exec")));
static int g_eval_given_up = 0;

static void give_up_eval_hook(PyThreadState* tstate);

// At the thread's first hooked frame: how far down its C stack hooked frames may go.
static uintptr_t eval_stack_floor(uintptr_t here) {
    size_t size = memlens_thread_stack_size();
    if (size == 0) {
        size = 256 * 1024;  // unknown: assume a small thread stack
    }
    size_t allowance = size / 8;
    return here > allowance ? here - allowance : 1;
}

// What a hooked frame rarely needs: kept out of counting_eval (noinline), whose C frame is paid
// once per Python call while it counts (inlined here, the thread-attribute read made that frame
// 176 bytes of the 576 each level of a deep recursion took on 3.11).
static __attribute__((noinline, cold)) void eval_enter_rare(PyThreadState* tstate, unsigned epoch,
                                                            uintptr_t here) {
    if (memlens_t_eval.epoch != epoch) {
        // The frames under this one were not counted: they are the thread's base now.
        memlens_t_eval.epoch = epoch;
        memlens_t_eval.depth = 0;
        memlens_t_eval.low = 0;
    }
    if (memlens_t_eval.stack_floor == 0) {
        memlens_t_eval.stack_floor = eval_stack_floor(here);
    }
    if (here < memlens_t_eval.stack_floor || c_recursion_low(tstate)) {
        give_up_eval_hook(tstate);  // this frame still goes through us; calls from it do not
    }
}

// The PEP 523 signature of every supported version: (tstate, the version's frame, throwflag).
static PyObject* counting_eval(PyThreadState* tstate, memlens_py_frame* frame, int throwflag) {
    unsigned epoch = __atomic_load_n(&g_eval_epoch, __ATOMIC_RELAXED);
    uintptr_t here = (uintptr_t)__builtin_frame_address(0);
    if (__builtin_expect(memlens_t_eval.epoch != epoch || here < memlens_t_eval.stack_floor ||
                             memlens_t_eval.stack_floor == 0 || c_recursion_low(tstate),
                         0)) {
        eval_enter_rare(tstate, epoch, here);
    }
    ++memlens_t_eval.depth;
    ++memlens_t_eval.calls;
    refund_eval_c_units(tstate, 1);  // 3.12+: as if inlined (frames_312.h)
    PyObject* result = _PyEval_EvalFrameDefault(tstate, frame, throwflag);
    refund_eval_c_units(tstate, -1);
    if (memlens_t_eval.epoch == epoch && --memlens_t_eval.depth < memlens_t_eval.low) {
        memlens_t_eval.low = memlens_t_eval.depth;
    }
    return result;
}

int memlens_eval_hook_install(const void* thread) {
    PyThreadState* tstate = (PyThreadState*)thread;
    if (tstate == NULL) {
        return 0;
    }
    PyInterpreterState* interp = tstate->interp;
    if (interp->eval_frame == counting_eval) {
        return 1;
    }
    if (interp->eval_frame != MEMLENS_DEFAULT_EVAL_FRAME ||
        __atomic_load_n(&g_eval_given_up, __ATOMIC_RELAXED)) {
        return 0;  // someone else's (a debugger's) stays; or given up: walks stay full
    }
    __atomic_add_fetch(&g_eval_epoch, 1, __ATOMIC_RELAXED);
    // What _PyInterpreterState_SetEvalFrameFunc does on a GIL build, minus 3.13's count of
    // "rare events" (read only by the experimental JIT's optimizer).
    interp->eval_frame = counting_eval;
    return 1;
}

int memlens_eval_hook_installed(const void* thread) {
    PyThreadState* tstate = (PyThreadState*)thread;
    return tstate != NULL && tstate->interp->eval_frame == counting_eval;
}

void memlens_eval_hook_uninstall(const void* thread) {
    __atomic_add_fetch(&g_eval_epoch, 1, __ATOMIC_RELAXED);
    PyThreadState* tstate = (PyThreadState*)thread;
    if (tstate != NULL && tstate->interp->eval_frame == counting_eval) {
        tstate->interp->eval_frame = MEMLENS_DEFAULT_EVAL_FRAME;
    }
}

static void give_up_eval_hook(PyThreadState* tstate) {
    __atomic_store_n(&g_eval_given_up, 1, __ATOMIC_RELAXED);
    memlens_eval_hook_uninstall(tstate);
}

void memlens_eval_hook_reset(void) { __atomic_store_n(&g_eval_given_up, 0, __ATOMIC_RELAXED); }

int memlens_eval_hook_given_up(void) { return __atomic_load_n(&g_eval_given_up, __ATOMIC_RELAXED); }

static inline int eval_counts(const void* thread, memlens_eval_state* out) {
    PyThreadState* tstate = (PyThreadState*)thread;
    if (tstate == NULL || tstate->interp->eval_frame != counting_eval) {
        return 0;  // not installed, or replaced (a debugger attached): frames go around us
    }
    out->calls = memlens_t_eval.calls;
    if (memlens_t_eval.epoch != __atomic_load_n(&g_eval_epoch, __ATOMIC_RELAXED)) {
        out->depth = out->low = 0;  // no frame of this thread went through this install yet
    } else {
        out->depth = memlens_t_eval.depth;
        out->low = memlens_t_eval.low;
    }
    return 1;
}

static inline int read_moved(const void* thread, int max_depth, memlens_raw_frame* out, int max,
                             memlens_moved_levels* moved) {
    moved->thread = thread;
    if (!eval_counts(thread, &moved->eval)) {
        return 0;
    }
    const memlens_eval_state* eval = &moved->eval;
    if (eval->low < 1 || eval->depth > max_depth) {
        return 1;
    }
    moved->fresh = walk_top(thread, eval->depth - eval->low + 1, out, max, &moved->below);
    return 2;
}

// Its every other case: a call here would make every case save registers (see below).
static __attribute__((noinline)) int read_moved_elsewhere(int gil_held, int max_depth,
                                                          memlens_raw_frame* out, int max,
                                                          memlens_moved_levels* moved) {
    return read_moved(current_thread(gil_held), max_depth, out, max, moved);
}

// The current thread, its eval counts and the moved levels in one call: the allocation
// path pays one call and one read of the thread-locals, not three. The usual case (the GIL
// held, the runtime checked) makes no call of its own on 3.10 and 3.11.
int memlens_read_moved(int gil_held, int max_depth, memlens_raw_frame* out, int max,
                       memlens_moved_levels* moved) {
    if (!gil_held || g_runtime_matches != 1) {
        return read_moved_elsewhere(gil_held, max_depth, out, max, moved);
    }
    return read_moved(_PyThreadState_GET(), max_depth, out, max, moved);
}

// --- code objects ------------------------------------------------------------------------------

void memlens_identify_code(const void* code, memlens_code_identity* out) {
    const PyCodeObject* co = (const PyCodeObject*)code;
    out->name = code_name(co);
    out->filename = co->co_filename;
    out->first_line = co->co_firstlineno;
}

int memlens_frame_unit(const void* code, const void* instr) {
    ptrdiff_t units = (const _Py_CODEUNIT*)instr - code_start((const PyCodeObject*)code);
    return units < 0 ? -1 : (int)units;
}

int memlens_frame_line(const void* code, const void* instr) {
    PyCodeObject* co = (PyCodeObject*)code;
    int unit = memlens_frame_unit(code, instr);
    // A frame that has not started yet points one unit before its code: its `def` line.
    if (unit < 0) {
        return co->co_firstlineno;
    }
    // PyCode_Addr2Line takes a byte offset on every version (3.10's f_lasti is in units too).
    return PyCode_Addr2Line(co, unit * (int)sizeof(_Py_CODEUNIT));
}

int memlens_code_units(const void* code) { return code_units((const PyCodeObject*)code); }

void memlens_code_lines(const void* code, int* lines, int units) {
    PyCodeObject* co = (PyCodeObject*)code;
    // What the (unexported) _PyCode_InitAddressRange does; the struct is in cpython/code.h on
    // every version (3.10's table has another format, read by the same exported function).
    PyCodeAddressRange bounds;
    bounds.opaque.lo_next = (__typeof__(bounds.opaque.lo_next))PyBytes_AS_STRING(co->co_linetable);
    bounds.opaque.limit = bounds.opaque.lo_next + PyBytes_GET_SIZE(co->co_linetable);
    bounds.opaque.computed_line = co->co_firstlineno;
    bounds.ar_start = -1;
    bounds.ar_end = 0;
    bounds.ar_line = -1;
    // Increasing offsets: each call moves the range forward, O(table) for the whole code.
    for (int unit = 0; unit < units; unit++) {
        lines[unit] = _PyCode_CheckLineNumber(unit * (int)sizeof(_Py_CODEUNIT), &bounds);
    }
}

static size_t put_utf8(char* buf, size_t cap, size_t at, Py_UCS4 c) {
    char tmp[4];
    size_t n;
    if (c >= 0xD800 && c <= 0xDFFF) {
        c = 0xFFFD;  // a lone surrogate is not valid UTF-8 (the reader would reject the file)
    }
    if (c < 0x80) {
        tmp[0] = (char)c;
        n = 1;
    } else if (c < 0x800) {
        tmp[0] = (char)(0xC0 | (c >> 6));
        tmp[1] = (char)(0x80 | (c & 0x3F));
        n = 2;
    } else if (c < 0x10000) {
        tmp[0] = (char)(0xE0 | (c >> 12));
        tmp[1] = (char)(0x80 | ((c >> 6) & 0x3F));
        tmp[2] = (char)(0x80 | (c & 0x3F));
        n = 3;
    } else {
        tmp[0] = (char)(0xF0 | (c >> 18));
        tmp[1] = (char)(0x80 | ((c >> 12) & 0x3F));
        tmp[2] = (char)(0x80 | ((c >> 6) & 0x3F));
        tmp[3] = (char)(0x80 | (c & 0x3F));
        n = 4;
    }
    if (at + n > cap) {
        return 0;
    }
    memcpy(buf + at, tmp, n);
    return n;
}

size_t memlens_str_utf8(const void* str, char* buf, size_t cap) {
    PyObject* s = (PyObject*)str;
    if (s == NULL || !PyUnicode_Check(s) || !PyUnicode_IS_READY(s)) {
        return 0;
    }
    int kind = PyUnicode_KIND(s);
    const void* data = PyUnicode_DATA(s);
    Py_ssize_t length = PyUnicode_GET_LENGTH(s);
    if (PyUnicode_IS_COMPACT_ASCII(s)) {
        // File and function names are nearly always ASCII: their bytes are the UTF-8 already
        // (one copy instead of ~15 instructions a character).
        size_t n = (size_t)length < cap ? (size_t)length : cap;
        memcpy(buf, data, n);
        return n;
    }
    size_t at = 0;
    for (Py_ssize_t i = 0; i < length; i++) {
        size_t n = put_utf8(buf, cap, at, PyUnicode_READ(kind, data, i));
        if (n == 0) {
            break;  // truncated at a character boundary
        }
        at += n;
    }
    return at;
}

static memlens_code_death_fn code_death_callback = NULL;

#if MEMLENS_HAVE_CODE_WATCHERS
// 3.12+: a code watcher hears of every code object's death before its memory is freed.
static int code_watcher_id = -1;

static int on_code_event(PyCodeEvent event, PyCodeObject* code) {
    memlens_code_death_fn callback = code_death_callback;
    if (event == PY_CODE_EVENT_DESTROY && callback != NULL) {
        callback(code);
    }
    return 0;
}

void memlens_watch_code_deaths(memlens_code_death_fn on_death) {
    code_death_callback = on_death;
    if (on_death != NULL && code_watcher_id < 0) {
        code_watcher_id = PyCode_AddWatcher(on_code_event);
        if (code_watcher_id < 0) {
            // All watcher slots taken: caches keyed by code address cannot be trusted, which
            // the tracker cannot express, so say it the one way a GIL holder can.
            PyErr_WriteUnraisable(NULL);
        }
    } else if (on_death == NULL && code_watcher_id >= 0) {
        PyCode_ClearWatcher(code_watcher_id);
        code_watcher_id = -1;
    }
}
#else
// Hack: 3.10 and 3.11 have no code watchers (PyCode_AddWatcher is 3.12), so code_dealloc is
// wrapped in the type's slot. The callback runs before the memory is freed, so a new code
// object at the same address is never mistaken for the old one.
static destructor original_code_dealloc = NULL;

static void code_dealloc_watched(PyObject* code) {
    memlens_code_death_fn callback = code_death_callback;
    if (callback != NULL) {
        callback(code);
    }
    original_code_dealloc(code);
}

void memlens_watch_code_deaths(memlens_code_death_fn on_death) {
    if (on_death != NULL && original_code_dealloc == NULL) {
        original_code_dealloc = PyCode_Type.tp_dealloc;
        PyCode_Type.tp_dealloc = code_dealloc_watched;
    } else if (on_death == NULL && original_code_dealloc != NULL) {
        PyCode_Type.tp_dealloc = original_code_dealloc;
        original_code_dealloc = NULL;
    }
    code_death_callback = on_death;
}
#endif
