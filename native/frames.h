// Reading the calling thread's Python frames without the GIL and without allocating.
// Implemented in C (frames.c) against CPython's internal frame structs: one interface for
// CPython 3.10 to 3.13, the version-specific part in the frames_3XX.h that frames.c includes.
#pragma once

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// One interpreter frame as found on the thread's frame chain: cheap to compare, resolved later.
typedef struct {
    const void* frame;  // the interpreter's frame (3.10 PyFrameObject, else _PyInterpreterFrame)
    const void* code;   // its PyCodeObject
    // Where in the bytecode the frame is, as an address inside its code's bytecode (3.10:
    // co_code + f_lasti; 3.11, 3.12: prev_instr; 3.13: instr_ptr).
    const void* instr;
} memlens_raw_frame;

// The calling thread's PyThreadState (NULL if Python does not know the thread, or if the running
// interpreter is not the minor version memlens was built for): every function
// below that reads frames takes it. gil_held: the caller holds the GIL (the MEM and OBJ
// allocator domains require it), so the runtime's current thread state is the caller's.
const void* memlens_current_thread(int gil_held);

// Writes the position (instr) and the address of each of the thread's frames, innermost
// first, into out[0..max) and frames[0..max), and returns how many frames the thread has, or
// max + 1 if it has more than max (the rest are not read). A position identifies its code
// object too (it points into it), as long as that code object lives. The innermost
// `inner_max` frames are also written in full to inner[] (the levels most likely to need
// interning), so that the usual event walks once. known[0..known_depth) (root first) holds the
// frames of the thread's previous walk: only a hint, every link is checked against the
// interpreter's own, but it lets a deep walk read its frames in parallel instead of one pointer
// after another. *chain_length is the length of the chain, incomplete frames included (past
// max: more than max).
int memlens_walk_positions(const void* thread, const void** out, const void** frames, int max,
                           memlens_raw_frame* inner, int inner_max, const void* const* known,
                           int known_depth, int* chain_length);

// The innermost `count` complete frames in full; returns how many were written.
int memlens_innermost_frames(const void* thread, memlens_raw_frame* out, int count);

// --- the evaluation hook -------------------------------------------------------------------
// A frame below the innermost one cannot move: only the innermost frame runs. So if no frame
// under level L returned since the last walk, levels under L are as they were, and a walk
// needs to read only the frames above. Before 3.12 CPython has no cheap "frame returned" event
// but the frame-evaluation hook of PEP 523 (on 3.10 to 3.13): with it set, every frame is
// evaluated through it (3.11+ then inlines no call), so a per-thread count of the frames in it,
// and the lowest that count fell to, say which levels may have moved. It costs every Python call a
// C-level call (about 20 ns: 1.4x on a loop of calls that allocates nothing), so the tracker keeps
// it only while the frames it saves walks from reading are worth more than that.

// Without the hook, 3.11+ runs a Python call inside its caller's C frame; through the hook each
// call is a C-level recursion (~500 bytes of C stack per level). A program that raised the
// recursion limit and recurses deep would overflow a C stack that plain 3.11+ never touches, so
// once a thread's frames in the hook use an eighth of its C stack the hook is removed for the
// rest of the session (deeper calls are inlined again). On 3.12+ each hooked frame would also
// spend the interpreter's C recursion budget (1,500 units on 3.12: RecursionError at ~750
// frames); the hook gives back what its own entry into the eval loop takes (frames_312.h), and
// steps aside only if C code itself spends half of that budget.
//
// Implemented by the tracker (it needs the re-entrancy guard: this may allocate): the calling
// thread's C stack size in bytes, 0 if unknown.
size_t memlens_thread_stack_size(void);

// Installs the hook unless another one is set (a debugger's) or it was given up this session;
// true if ours is installed.
// A plain pointer store, as in _PyInterpreterState_SetEvalFrameFunc: callable from a hook.
int memlens_eval_hook_install(const void* thread);
// Whether ours is the interpreter's frame-evaluation function now.
int memlens_eval_hook_installed(const void* thread);
// Removes our hook if it is still set (thread may be NULL: then it only stops counting).
void memlens_eval_hook_uninstall(const void* thread);
// A new session: the hook may be installed again even if the last one gave it up.
void memlens_eval_hook_reset(void);
// Whether the hook was given up this session (a thread's hooked frames used too much C stack).
int memlens_eval_hook_given_up(void);

typedef struct {
    int depth;        // the thread's frames in the hook now
    int low;          // the fewest there were since the last commit
    long long calls;  // frames the thread ever evaluated through the hook
} memlens_eval_state;
// What the usual walk needs, read in one call (memlens_read_moved).
typedef struct {
    const void* thread;  // memlens_current_thread(gil_held)
    // While our hook is installed: the thread's counts (depth and low are 0 until a frame of
    // this thread goes through this install).
    memlens_eval_state eval;
    const void* below;  // the frame under the levels read (NULL at the root)
    int fresh;          // complete frames among them, written to out[] innermost first
} memlens_moved_levels;
// memlens_current_thread, then the hook's counts: 0 if they are not known (our hook is not
// installed; only moved->thread is set); else, if eval.low >= 1 and eval.depth <= max_depth,
// the innermost levels that may have moved since the last commit (eval.depth - eval.low + 1,
// incomplete frames included; at most max complete ones written) and 2; else 1.
int memlens_read_moved(int gil_held, int max_depth, memlens_raw_frame* out, int max,
                       memlens_moved_levels* moved);
// The calling thread's counts, kept by the hook (frames.c); here so that a commit is one store.
typedef struct {
    unsigned epoch;  // the install the counts below belong to
    int depth;       // memlens_eval_state's
    int low;
    long long calls;
    uintptr_t stack_floor;  // the lowest C stack address hooked frames may reach (0: not known)
} memlens_eval_thread;
extern __thread memlens_eval_thread memlens_t_eval __attribute__((tls_model("initial-exec")));

// The thread's walk used the counts: the next one is relative to now.
static inline void memlens_eval_commit(void) { memlens_t_eval.low = memlens_t_eval.depth; }

// What identifies a code object while it lives (its address may be reused after it dies).
typedef struct {
    const void* name;      // co_qualname (a str object); co_name on 3.10, which has no qualname
    const void* filename;  // co_filename (a str object)
    int first_line;        // co_firstlineno
} memlens_code_identity;

void memlens_identify_code(const void* code, memlens_code_identity* out);

// The source line of a frame's position (a pure read of co_linetable).
int memlens_frame_line(const void* code, const void* instr);

// A frame's position as a code-unit index (-1 before the first instruction), and the size of
// its code in code units.
int memlens_frame_unit(const void* code, const void* instr);
int memlens_code_units(const void* code);

// The line of every code unit of a code object, in one pass over co_linetable (a lookup per
// position rescans the table from the start: quadratic over a big module body).
void memlens_code_lines(const void* code, int* lines, int units);

// UTF-8 of a str object into buf (never more than cap bytes); returns the length written.
// Lone surrogates become U+FFFD. No Python API that could allocate is used.
size_t memlens_str_utf8(const void* str, char* buf, size_t cap);

// Code objects die and their memory is reused by new ones (exec'd code, every module body
// once imported), so anything cached by code address must hear of the death. `on_death` runs
// with the GIL held, before the memory is freed; NULL stops watching. Needs the GIL.
typedef void (*memlens_code_death_fn)(const void* code);
void memlens_watch_code_deaths(memlens_code_death_fn on_death);

#ifdef __cplusplus
}
#endif
