// Reading the calling thread's Python frames without the GIL and without allocating.
// Implemented in C (frames.c) against CPython's internal frame structs.
#pragma once

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

// One interpreter frame as found on the thread's frame chain: cheap to compare, resolved later.
typedef struct {
    const void* frame;  // the _PyInterpreterFrame
    const void* code;   // its PyCodeObject
    const void* instr;  // prev_instr: where in the bytecode the frame is
} memlens_raw_frame;

// Writes the position (prev_instr) and the address of each of the calling thread's frames,
// innermost first, into out[0..max) and frames[0..max), and returns how many frames the thread
// has (may exceed max: then only the innermost max were written); 0 when the thread has no
// Python thread state. A position identifies its code object too (it points into it), as long
// as that code object lives. The innermost `inner_max` frames are also written in full to
// inner[] (the levels most likely to need interning), so that the usual event walks once.
// known[0..known_depth) (root first) holds the frames of the thread's previous walk: only a
// hint, every link is checked against the interpreter's own, but it lets a deep walk read its
// frames in parallel instead of one pointer after another. *chain_length is the length of the
// whole chain, incomplete frames included.
int memlens_walk_positions(const void** out, const void** frames, int max,
                           memlens_raw_frame* inner, int inner_max, const void* const* known,
                           int known_depth, int* chain_length);

// The innermost `levels` frames of the chain, incomplete ones included: the complete ones are
// written to out[] innermost first (at most max) and counted in the result; *below is the
// frame under them (NULL at the root).
int memlens_walk_top(int levels, memlens_raw_frame* out, int max, const void** below);

// --- the evaluation hook -------------------------------------------------------------------
// A frame below the innermost one cannot move: only the innermost frame runs. So if no frame
// under level L returned since the last walk, levels under L are as they were, and a walk
// needs to read only the frames above. CPython 3.11 has no cheap "frame returned" event but
// the frame-evaluation hook of PEP 523: with it set, every frame is evaluated through it (no
// call is inlined), so a per-thread count of the frames in it, and the lowest that count fell
// to, say which levels may have moved. It costs every Python call a C-level call (about 1.4x
// on a loop of calls that allocates nothing), so the tracker installs it only once it sees
// deep stacks, where a walk costs more than that.

// Installs the hook unless another one is set (a debugger's); true if ours is installed.
// A plain pointer store: callable from an allocation hook.
int memlens_eval_hook_install(void);
// Whether ours is the interpreter's frame-evaluation function now.
int memlens_eval_hook_installed(void);
// Removes our hook if it is still set (GIL held, or a single-threaded forked child).
void memlens_eval_hook_uninstall(void);

// For the calling thread, while our hook is installed and has evaluated a frame of this
// thread since: how many of its frames are in the hook now (*depth), and the fewest there
// were since the last commit (*low). Returns 0 (and nothing is known) otherwise.
int memlens_eval_counts(int* depth, int* low);
// The thread's walk used the counts: the next one is relative to now.
void memlens_eval_commit(void);

// The innermost `count` of those frames in full; returns how many were written.
int memlens_innermost_frames(memlens_raw_frame* out, int count);

// What identifies a code object while it lives (its address may be reused after it dies).
typedef struct {
    const void* name;      // co_qualname (a str object)
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
