// Object snapshots (objects.h): the census of live Python objects by (type, allocating stack).
//
// Three passes, all with the GIL and the guard held. (1) Reach: every object reachable from the
// seeds through tp_traverse and code objects' fields (this reaches the str, int, bytes and float
// that gc.get_objects() leaves out, the dicts and tuples the collector untracks, and the line
// tables and constants of code), deduplicated by address; each object's
// referents are kept, the census's graph, which the mark and the holders walk rather than
// traverse again. (2) Buffers: the pointer each object of a C type exports through the buffer
// protocol. (3) Under the tracker's lock, each object's block and buffer block are found in the
// live table.
#include "objects.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <memory>
#include <unordered_map>

#include "clock.h"
#include "flat_map.h"
#include "object_layout.h"
#include "state.h"

namespace memlens {
namespace {

constexpr int32_t kUntracked = -2;    // an object whose block the tracker did not see
constexpr size_t kClockEvery = 4096;  // objects between two looks at the clock

// Pass 1's state: the census's objects, their index and their references.
struct Reach {
    Census* census;
    bool lost_references = false;  // out of memory for the graph: the census is not complete

    uint32_t add(PyObject* object) {
        bool added = false;
        return census->add(object, &added);
    }
};

// Called by tp_traverse (C): nothing may be thrown through it.
int visit(PyObject* object, void* arg) {
    auto* reach = static_cast<Reach*>(arg);
    bool added = false;
    uint32_t j = reach->census->add(object, &added);
    if (j == kNoObject) {
        return 0;
    }
    try {
        reach->census->referents.push_back(j);
    } catch (const std::bad_alloc&) {
        reach->lost_references = true;
    }
    return 0;
}

// The seeds, and the running frames with their locals (see Census::frame_locals).
void add_seeds(Reach& reach, PyObject* seeds, PyObject* frame_locals, PyObject* exclude) {
    Census& census = *reach.census;
    Py_ssize_t n = PyList_GET_SIZE(seeds);
    for (Py_ssize_t i = 0; i < n; ++i) {
        reach.add(PyList_GET_ITEM(seeds, i));
    }
    MappedVector<PyObject*> held;  // what the caller's lists hold: one reference each time
    held.reserve(static_cast<size_t>(n));
    for (Py_ssize_t i = 0; i < n; ++i) held.push_back(PyList_GET_ITEM(seeds, i));
    for (Py_ssize_t f = 0; f < PyList_GET_SIZE(frame_locals); ++f) {
        PyObject* pair = PyList_GET_ITEM(frame_locals, f);
        if (!PyTuple_Check(pair) || PyTuple_GET_SIZE(pair) != 2 ||
            !PyList_Check(PyTuple_GET_ITEM(pair, 1))) {
            continue;
        }
        PyObject* frame = PyTuple_GET_ITEM(pair, 0);
        PyObject* values = PyTuple_GET_ITEM(pair, 1);
        uint32_t frame_index = reach.add(frame);
        std::vector<uint32_t> locals;
        for (Py_ssize_t v = 0; v < PyList_GET_SIZE(values); ++v) {
            PyObject* value = PyList_GET_ITEM(values, v);
            uint32_t value_index = reach.add(value);
            held.push_back(value);
            if (value_index != kNoObject) locals.push_back(value_index);
        }
        if (frame_index != kNoObject)
            census.frame_locals.emplace_back(frame_index, std::move(locals));
    }
    // For the holders' refcount test (a frame may be in the seeds twice: from
    // gc.get_objects() and from the threads' stacks).
    census.seed_refs.assign(census.objects.size(), 0);
    for (PyObject* object : held) {
        uint32_t j = census.index_of(object);
        if (j != kNoObject) census.seed_refs[j] += 1;
    }
    std::vector<uint32_t> excluded;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(exclude); ++i) {
        PyObject* object = PyList_GET_ITEM(exclude, i);
        uint32_t j = reach.add(object);  // else a frame's traversal would reach it (3.10)
        if (j != kNoObject) excluded.push_back(j);
    }
    census.excluded.assign(census.objects.size(), false);
    for (uint32_t j : excluded) census.excluded[j] = true;
}

// Pass 1: breadth first over the references, keeping each object's referents; false if the
// deadline came first (the objects not traversed then have none).
bool reach_all(Reach& reach, int64_t deadline) {
    Census& census = *reach.census;
    bool complete = true;
    for (size_t i = 0; i < census.objects.size() && complete; ++i) {
        census.referents_start.push_back(static_cast<uint32_t>(census.referents.size()));
        if (i + kPrefetchAhead < census.objects.size())
            prefetch_for_write(census.objects[i + kPrefetchAhead]);
        PyObject* object = census.objects[i];
        bool excluded = i < census.excluded.size() && census.excluded[i];
        if (!excluded && census_traverses(object)) {
            if (PyCode_Check(object)) {
                memlens_code_referents(object, visit, &reach);
            } else {
                Py_TYPE(object)->tp_traverse(object, visit, &reach);
            }
        }
        complete = i % kClockEvery != 0 || monotonic_ns() <= deadline;
    }
    while (census.referents_start.size() <= census.objects.size()) {
        census.referents_start.push_back(static_cast<uint32_t>(census.referents.size()));
    }
    return complete && !reach.lost_references;
}

// Whether objects of this type may be asked for a buffer: a C implementation (never a class's
// Python `__buffer__`, 3.12+, which would run the program's code), and one that owns its memory
// (a memoryview's buffer is its exporter's; a bytes object's lies inside its own block).
bool exports_own_buffer(PyTypeObject* type, std::unordered_map<PyTypeObject*, bool>& cache) {
    if (type->tp_as_buffer == nullptr || type->tp_as_buffer->bf_getbuffer == nullptr ||
        type == &PyMemoryView_Type || type == &PyBytes_Type) {
        return false;
    }
    auto known = cache.find(type);
    if (known != cache.end()) {
        return known->second;
    }
    static PyObject* dunder = PyUnicode_InternFromString("__buffer__");
    PyObject* method = dunder == nullptr ? nullptr : _PyType_Lookup(type, dunder);  // borrowed
    bool ours = method == nullptr || !PyFunction_Check(method);
    cache.emplace(type, ours);
    return ours;
}

// Pass 2: the buffer pointer of each exporting object, by index.
MappedVector<std::pair<uint32_t, void*>> exported_buffers(const MappedVector<PyObject*>& objects) {
    MappedVector<std::pair<uint32_t, void*>> buffers;
    std::unordered_map<PyTypeObject*, bool> cache;
    for (size_t i = 0; i < objects.size(); ++i) {
        if (!exports_own_buffer(Py_TYPE(objects[i]), cache)) {
            continue;
        }
        Py_buffer view{};
        if (PyObject_GetBuffer(objects[i], &view, PyBUF_FULL_RO) == 0) {
            if (view.buf != nullptr) {
                buffers.emplace_back(static_cast<uint32_t>(i), view.buf);
            }
            PyBuffer_Release(&view);
        } else {
            PyErr_Clear();  // e.g. a numpy array of objects: its data is not counted
        }
    }
    return buffers;
}

struct Found {
    MappedVector<int32_t> stack;  // per object, kUntracked if its block is not live
    MappedVector<int64_t> bytes;
};

// The exporters of one buffer block, in index order: the block goes to the first, or to a later
// one whose own stack is the block's when the first's is not.
void give_buffer(Found& found, const MappedVector<std::pair<uint32_t, void*>>& buffers,
                 const uint32_t* first, const uint32_t* end, uint64_t size, int32_t stack) {
    constexpr uint32_t kNoOwner = UINT32_MAX;
    uint32_t owner = kNoOwner;
    for (const uint32_t* k = first; k != end; ++k) {
        uint32_t i = buffers[*k].first;
        if (owner != kNoOwner) {
            if (found.stack[owner] == stack || found.stack[i] != stack) {
                continue;
            }
            found.bytes[owner] -= static_cast<int64_t>(size);  // the better owner takes it
        }
        owner = i;
        if (found.stack[i] == kUntracked) {
            found.stack[i] = stack;  // an older object with a new buffer: the buffer's site
        }
        found.bytes[i] += static_cast<int64_t>(size);
    }
}

// Pass 3, under the lock: each object's block, and the buffer blocks. A buffer block shared by
// several exporters (numpy views of one array) goes to one whose own stack is the block's, else
// to the first.
bool find_blocks(const LockedTables& tables, const MappedVector<PyObject*>& objects,
                 const MappedVector<std::pair<uint32_t, void*>>& buffers, int64_t deadline,
                 Found* found) {
    Aggregate& aggregate = tables->aggregate;
    size_t n = objects.size();
    found->stack.assign(n, kUntracked);
    found->bytes.assign(n, 0);
    for (size_t i = 0; i < n; ++i) {
        // Each object is a cache miss, and so is its block's record: both are asked for ahead
        // (the object kPrefetchAhead objects before its record, which needs its type).
        if (i + 2 * kPrefetchAhead < n) prefetch_for_write(objects[i + 2 * kPrefetchAhead]);
        if (i + kPrefetchAhead < n) aggregate.prefetch_small(block_of(objects[i + kPrefetchAhead]));
        uint64_t size = 0;
        int32_t stack = 0;
        if (aggregate.find(block_of(objects[i]), &size, &stack)) {
            found->stack[i] = stack;
            found->bytes[i] = static_cast<int64_t>(size);
        }
        if (i % kClockEvery == 0 && monotonic_ns() > deadline) {
            return false;
        }
    }
    // The exporters of each buffer together, in index order: a sort, not a map from buffer to
    // owner (1.35M objects, 450,000 bytearrays: 24 MB of hash table while it grew).
    MappedVector<uint32_t> by_buffer(buffers.size());
    for (size_t k = 0; k < by_buffer.size(); ++k) by_buffer[k] = static_cast<uint32_t>(k);
    std::sort(by_buffer.begin(), by_buffer.end(), [&buffers](uint32_t a, uint32_t b) {
        auto x = reinterpret_cast<uintptr_t>(buffers[a].second);
        auto y = reinterpret_cast<uintptr_t>(buffers[b].second);
        return x != y ? x < y : a < b;  // buffers are in index order
    });
    for (size_t run = 0; run < by_buffer.size();) {
        void* buffer = buffers[by_buffer[run]].second;
        size_t end = run + 1;
        while (end < by_buffer.size() && buffers[by_buffer[end]].second == buffer) ++end;
        uint64_t size = 0;
        int32_t stack = 0;
        if (aggregate.find(reinterpret_cast<uintptr_t>(buffer), &size, &stack)) {
            give_buffer(*found, buffers, by_buffer.data() + run, by_buffer.data() + end, size,
                        stack);
        }
        run = end;
    }
    return true;
}

// Groups by (type, stack), biggest first. A group's key is exact in 64 bits: its type's
// number (few types) and its stack; groups are found through an IndexTable (4 B a slot, not an
// unordered_map's node per group: 48,000 groups on the sympy bench).
void group(Found& found, Census* census) {
    const MappedVector<PyObject*>& objects = census->objects;
    std::unordered_map<PyTypeObject*, uint32_t> type_numbers;
    PyTypeObject* last_type = nullptr;
    uint32_t last_number = 0;
    MappedVector<CensusGroup> groups;
    MappedVector<uint64_t> keys;  // per group
    IndexTable<32> index;
    MappedVector<uint32_t> group_of(objects.size(), kNoGroup);
    for (size_t i = 0; i < objects.size(); ++i) {
        // Excluded: not the program's (f_locals' dicts, memlens's own objects).
        if (i + kPrefetchAhead < objects.size()) prefetch_for_write(objects[i + kPrefetchAhead]);
        if (found.stack[i] == kUntracked || (i < census->excluded.size() && census->excluded[i])) {
            continue;
        }
        PyTypeObject* type = Py_TYPE(objects[i]);
        if (type != last_type) {  // runs of one type are common: one lookup each
            last_type = type;
            auto size = static_cast<uint32_t>(type_numbers.size());
            last_number = type_numbers.try_emplace(type, size).first->second;
        }
        uint64_t key = uint64_t{last_number} << 32 | static_cast<uint32_t>(found.stack[i]);
        auto place = index.find(key, [&keys](uint32_t g) { return keys[g]; });
        if (place.slot == nullptr) {
            throw std::bad_alloc();
        }
        if (!place.found()) {
            groups.push_back({type, found.stack[i], 0, 0});
            keys.push_back(key);
            index.fill(place, static_cast<uint32_t>(groups.size() - 1));
        }
        uint32_t g = place.index();
        groups[g].count += 1;
        groups[g].bytes += found.bytes[i];
        group_of[i] = g;
    }
    index.clear();
    keys = {};
    MappedVector<uint32_t> order(groups.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<uint32_t>(i);
    std::sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) {
        return groups[a].bytes != groups[b].bytes ? groups[a].bytes > groups[b].bytes : a < b;
    });
    MappedVector<uint32_t> rank(groups.size());
    census->groups.clear();
    census->groups.reserve(groups.size());
    for (size_t r = 0; r < order.size(); ++r) {
        rank[order[r]] = static_cast<uint32_t>(r);
        census->groups.push_back(groups[order[r]]);
    }
    for (uint32_t& g : group_of) {
        if (g != kNoGroup) g = rank[g];
    }
    census->group_of = std::move(group_of);
    census->bytes = std::move(found.bytes);
}

}  // namespace

uint32_t Census::index_of(PyObject* object) const {
    uint32_t found = index.lookup(reinterpret_cast<uint64_t>(object), [this](uint32_t i) {
        return reinterpret_cast<uint64_t>(objects[i]);
    });
    return found == 0 ? kNoObject : found - 1;
}

void* Census::buffer_of(uint32_t i) const {
    auto at = std::lower_bound(buffers.begin(), buffers.end(), std::make_pair(i, nullptr),
                               [](const auto& a, const auto& b) { return a.first < b.first; });
    return at != buffers.end() && at->first == i ? at->second : nullptr;
}

uint32_t Census::add(PyObject* object, bool* added) {
    auto place = index.find(reinterpret_cast<uint64_t>(object),
                            [this](uint32_t i) { return reinterpret_cast<uint64_t>(objects[i]); });
    *added = false;
    if (place.slot == nullptr) {
        return kNoObject;
    }
    if (!place.found()) {
        try {
            objects.push_back(object);
        } catch (const std::bad_alloc&) {
            return kNoObject;
        }
        index.fill(place, static_cast<uint32_t>(objects.size() - 1));
        *added = true;
    }
    return place.index();
}

void take_census(const Guard& guard, PyObject* seeds, PyObject* frame_locals, PyObject* exclude,
                 int64_t deadline, Census* census) {
    census->t_ms = std::max<int64_t>(0, (monotonic_ns() - S.start_mono_ns) / 1'000'000);
    Reach reach{census};
    add_seeds(reach, seeds, frame_locals, exclude);
    census->complete = reach_all(reach, deadline);
    // The objects the traversal added are held by no seed (the holders read this per object).
    census->seed_refs.resize(census->objects.size(), 0);
    census->buffers = exported_buffers(census->objects);
    Found found;
    {
        LockedTables tables(guard, S.tables);
        if (!tracking()) {
            return;
        }
        bool found_all = find_blocks(tables, census->objects, census->buffers, deadline, &found);
        census->complete = census->complete && found_all;
    }
    group(found, census);
}

std::vector<int32_t> object_stacks(const Guard& guard, PyObject* objects) {
    Py_ssize_t n = PyList_GET_SIZE(objects);
    std::vector<int32_t> stacks(static_cast<size_t>(n), -1);
    LockedTables tables(guard, S.tables);
    if (!tracking()) {
        return stacks;
    }
    for (Py_ssize_t i = 0; i < n; ++i) {
        PyObject* object = PyList_GET_ITEM(objects, i);
        uint64_t size = 0;
        int32_t stack = -1;
        if (tables->aggregate.find(block_of(object), &size, &stack)) {
            stacks[static_cast<size_t>(i)] = stack;
        }
    }
    return stacks;
}

bool record_snapshot(const Guard& guard, std::string label, int64_t t_ms, bool complete,
                     const std::vector<std::string>& type_names,
                     const std::vector<ObjectGroupInput>& objects,
                     const std::vector<HolderInput>& holders,
                     std::optional<ReferencedRecord> referenced) {
    LockedTables tables(guard, S.tables);
    if (!tracking()) {
        return false;
    }
    Interning& interning = tables->interning;
    auto nodes = static_cast<int32_t>(interning.nodes().size());
    auto valid = [nodes](int32_t stack) { return stack >= 0 && stack < nodes ? stack : -1; };
    SnapshotRecord record;
    record.label = std::move(label);
    record.t_ms = t_ms;
    record.complete = complete;
    std::vector<uint32_t> type_ids;  // each name interned once, not once per group
    for (const std::string& name : type_names) type_ids.push_back(interning.intern_string(name));
    for (const ObjectGroupInput& g : objects) {
        if (g.type < type_ids.size()) {
            record.objects.push_back({type_ids[g.type], valid(g.stack), g.count, g.bytes});
        }
    }
    for (const HolderInput& h : holders) {
        HolderRecord holder{
            interning.intern_string(h.type), valid(h.stack), h.count, h.bytes, h.root, {}};
        for (const auto& [text, stack] : h.steps) {
            holder.steps.push_back({interning.intern_string(text), valid(stack)});
        }
        record.holders.push_back(std::move(holder));
    }
    record.referenced = std::move(referenced);
    tables->snapshots.push_back(std::move(record));
    return true;
}

namespace {

std::atomic<PyObject*> g_snapshot_handler{nullptr};
constexpr size_t kMaxLabelBytes = 256;

// In the main thread, with the GIL held (a pending call). Errors are the handler's to report:
// a pending call that fails would raise in the program's code.
int run_requested_snapshot(void* arg) {
    std::unique_ptr<std::string> label(static_cast<std::string*>(arg));
    PyObject* handler = g_snapshot_handler.load();
    if (handler == nullptr) {
        return 0;  // tracking stopped meanwhile
    }
    Py_INCREF(handler);
    PyObject* text;
    {
        Guard guard;  // the label is ours, not the program's
        text =
            PyUnicode_DecodeUTF8(label->data(), static_cast<Py_ssize_t>(label->size()), "replace");
    }
    PyObject* result = text == nullptr ? nullptr : PyObject_CallOneArg(handler, text);
    Py_XDECREF(text);
    Py_XDECREF(result);
    Py_DECREF(handler);
    if (result == nullptr) {
        PyErr_Clear();
    }
    return 0;
}

}  // namespace

void set_snapshot_handler(PyObject* handler) {
    Py_XINCREF(handler);
    Py_XDECREF(g_snapshot_handler.exchange(handler));
}

void poll_snapshot_request(const Guard&, const std::string& path) {
    if (path.empty() || g_snapshot_handler.load() == nullptr) {
        return;
    }
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return;
    }
    char buf[kMaxLabelBytes];
    ssize_t n = ::read(fd, buf, sizeof(buf));
    ::close(fd);
    ::unlink(path.c_str());  // taken: the server sees it gone
    auto* label = new std::string(buf, n > 0 ? static_cast<size_t>(n) : 0);
    if (Py_AddPendingCall(run_requested_snapshot, label) != 0) {
        delete label;  // the queue is full: the request is lost, the server times out
    }
}

}  // namespace memlens
