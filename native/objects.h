// Object snapshots: which live Python objects the tracker saw allocated, by (type, allocating
// stack), and the snapshots kept for the capture (writer.h SnapshotRecord).
//
// Called from the bindings with the GIL and the guard held: nothing a snapshot allocates is
// counted, and no Python code of the program runs while objects are walked.
#pragma once

#include <Python.h>

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "chunked.h"
#include "flat_map.h"
#include "guard.h"
#include "object_layout.h"
#include "writer.h"

namespace memlens {

// One (type, stack) group of a census.
struct CensusGroup {
    PyTypeObject* type;  // borrowed: its objects keep it alive
    int32_t stack;
    int64_t count;
    int64_t bytes;
};

constexpr uint32_t kNoGroup = UINT32_MAX;
constexpr uint32_t kNoObject = UINT32_MAX;

// What a census found. The object pointers are borrowed: valid only until Python code runs
// again (the bindings use a Census within one call, with the GIL held throughout).
struct Census {
    // Per object and per group: mapped (flat_map.h), so that what they outgrow goes back to the
    // kernel, not into the heap's free lists, where it stayed in the run's peak RSS.
    MappedVector<CensusGroup> groups;  // biggest first
    int64_t t_ms = 0;                  // since tracking started
    bool complete = true;              // false: the time budget ran out first
    MappedVector<PyObject*> objects;   // every object reached, tracked or not
    // Address -> index in objects: 4-byte slots, a probe compares objects[index] (a 16-byte
    // key and value slot, at most half full, was the census's biggest part). Released once the
    // graph below is all that is walked (release_index).
    IndexTable<32> index;  // an object's index fills the slot: no hash bits beside it
    // Each object's referents (census_traverses), in the order visited: those of objects[i] are
    // referents[referents_start[i] .. referents_start[i + 1]) (none for an object not
    // traversed). The mark and the holders walk these rather than traverse the heap again.
    MappedVector<uint32_t> referents_start;
    Chunked<uint32_t, 16> referents;
    MappedVector<uint32_t> seed_refs;  // references the seeds list holds to each object
    MappedVector<uint32_t> group_of;   // index in groups, kNoGroup for an uncounted object
    MappedVector<int64_t> bytes;       // per object: its block and its buffer's
    // (object index, the buffer it exports), by index: few objects export one, so not a
    // pointer per object (8 B of each object's census, most of them null).
    MappedVector<std::pair<uint32_t, void*>> buffers;
    // (frame, its locals) of running frames: from 3.11 a running frame's tp_traverse does not
    // visit its locals, so they are given, and are edges of the holders' graph.
    std::vector<std::pair<uint32_t, std::vector<uint32_t>>> frame_locals;
    // Objects that are not part of the program's graph (the frames' locals dicts that
    // f_locals made): never traversed, never a holder.
    std::vector<bool> excluded;

    // The index of object in objects, kNoObject if the census does not hold it.
    [[nodiscard]] uint32_t index_of(PyObject* object) const;
    // Adds object if it is new (*added says so); its index, kNoObject when out of memory.
    uint32_t add(PyObject* object, bool* added);
    void release_index() { index.clear(); }
    // The buffer objects[i] exports, nullptr if none.
    [[nodiscard]] void* buffer_of(uint32_t i) const;
};

// Objects between a prefetch and its use: each object a pass over the census reads is a cache
// miss (objects lie all over the heap), so the passes ask for objects ahead of their turn.
constexpr size_t kPrefetchAhead = 8;

// Where an object's block starts: the allocator returned the object minus its pre-header.
inline uintptr_t block_of(PyObject* object) {
    return reinterpret_cast<uintptr_t>(object) - memlens_preheader_size(Py_TYPE(object));
}

// Whether the census follows an object's references: through its tp_traverse, or a code
// object's fields (object_layout.h). Else it is a leaf of the census's graph.
inline bool census_traverses(PyObject* object) {
    return (PyObject_IS_GC(object) && Py_TYPE(object)->tp_traverse != nullptr) ||
           PyCode_Check(object);
}

// Every object reachable from `seeds` (a list: gc.get_objects() and the threads' frames) and
// from `frame_locals` (a list of (frame, [its local values]) of the running frames),
// through tp_traverse, found in the tracker's live table: its own block (object minus the
// pre-header) and the block that starts at the buffer it exports (bytearray, numpy.ndarray).
// Objects whose block the tracker never saw (allocated before tracking) are not counted.
void take_census(const Guard&, PyObject* seeds, PyObject* frame_locals, PyObject* exclude,
                 int64_t deadline_ns, Census* census);

// The stack each object's block was allocated at (-1 when the tracker did not see it).
[[nodiscard]] std::vector<int32_t> object_stacks(const Guard&, PyObject* objects);

struct ObjectGroupInput {
    uint32_t type;  // index in the snapshot's type names
    int32_t stack;
    int64_t count, bytes;
};

struct HolderInput {
    std::string type;
    int32_t stack;
    int64_t count, bytes;
    std::string root;
    std::vector<std::pair<std::string, int32_t>> steps;  // (text, stack), nearest first
};

// Keeps a snapshot for the capture (checkpoints and the final one). False when not tracking.
bool record_snapshot(const Guard&, std::string label, int64_t t_ms, bool complete,
                     const std::vector<std::string>& type_names,
                     const std::vector<ObjectGroupInput>& objects,
                     const std::vector<HolderInput>& holders,
                     std::optional<ReferencedRecord> referenced = std::nullopt);

// Snapshots on request (the editor, while a run is live): the server writes a label into
// OUTPUT.snapshot; the sampler thread, which wakes every 10 ms, takes the file and schedules
// `handler(label)` with Py_AddPendingCall, so the snapshot runs in the main thread with the GIL
// held at its next safe point, never in a signal handler or the sampler thread.
// GIL held; nullptr clears it (no request is taken then).
void set_snapshot_handler(PyObject* handler);
// Sampler thread (no GIL): a pending request file (OUTPUT.snapshot; "" polls nothing) becomes a
// pending call.
void poll_snapshot_request(const Guard&, const std::string& path);

}  // namespace memlens
