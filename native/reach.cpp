// Reachability at exit (reach.h). Two passes, GIL and guard held. (1) Objects: breadth first
// from the roots over tp_traverse, the running frames' locals, static types' fields and the
// fields of objects the collector does not traverse, never through memlens's own (excluded)
// objects. (2) Blocks, under the tracker's lock: each reached object's block and the buffer it
// exports, then a scan of the reached memory and the C globals for words that start another
// live block that is no object's, transitively.
//
// Objects are reached by their references only, never by a word found in memory: the
// interpreter's free lists (C globals) keep stale pointers to objects handed out again (a list
// popped from the free list and now in an unreachable cycle), as a list's spare capacity may.
// An object's memory is scanned without the collector's links in its pre-header, which chain
// every tracked object.
#include "reach.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <link.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <string>
#include <unordered_map>

#include "clock.h"
#include "flat_map.h"
#include "object_layout.h"
#include "state.h"

namespace memlens {
namespace {

constexpr size_t kClockEvery = 4096;  // objects or words between two looks at the clock

// Objects whose memory is only their value: not scanned (a str of megabytes holds no pointer).
bool is_data(PyObject* object) {
    return PyBytes_CheckExact(object) || PyUnicode_CheckExact(object) ||
           PyLong_CheckExact(object) || PyFloat_CheckExact(object);
}

// An object's size from its type (its block's, when the tracker did not see the block).
uint64_t object_size(PyObject* object) {
    PyTypeObject* type = Py_TYPE(object);
    auto size = static_cast<uint64_t>(type->tp_basicsize);
    if (type->tp_itemsize != 0) {
        Py_ssize_t items = Py_SIZE(object);
        size += static_cast<uint64_t>(items < 0 ? -items : items) *
                static_cast<uint64_t>(type->tp_itemsize);
    }
    return size;
}

struct Marker {
    Census& census;
    std::vector<bool> marked;
    std::vector<uint32_t> queue;

    void mark(uint32_t j) {
        if (marked[j] || (j < census.excluded.size() && census.excluded[j])) return;
        marked[j] = true;
        queue.push_back(j);
    }
};

int visit_referent(PyObject* object, void* arg) {
    auto* marker = static_cast<Marker*>(arg);
    if (object == nullptr) return 0;  // the index's empty key
    if (const uint32_t* j = marker->census.index.find(reinterpret_cast<uint64_t>(object))) {
        marker->mark(*j);
    }
    return 0;
}

using Spans = std::vector<std::pair<uintptr_t, uint64_t>>;  // (start, bytes)

// The writable segments of every loaded object but memlens's own (the one holding `own`):
// its statics hold the addresses of recent allocations, never the program's references.
struct Segments {
    uintptr_t own;
    Spans found;
};

int add_writable_segments(dl_phdr_info* info, size_t, void* arg) {
    auto* segments = static_cast<Segments*>(arg);
    for (int i = 0; i < info->dlpi_phnum; ++i) {
        const ElfW(Phdr)& segment = info->dlpi_phdr[i];
        uintptr_t start = info->dlpi_addr + segment.p_vaddr;
        if (segment.p_type == PT_LOAD && segments->own - start < segment.p_memsz) {
            return 0;
        }
    }
    for (int i = 0; i < info->dlpi_phnum; ++i) {
        const ElfW(Phdr)& segment = info->dlpi_phdr[i];
        if (segment.p_type == PT_LOAD && (segment.p_flags & PF_W) != 0) {
            uintptr_t start = info->dlpi_addr + segment.p_vaddr;
            uintptr_t aligned = (start + 7) & ~uintptr_t{7};
            if (segment.p_memsz > aligned - start) {
                segments->found.emplace_back(aligned, segment.p_memsz - (aligned - start));
            }
        }
    }
    return 0;
}

// The C globals of every loaded object (writable PT_LOAD segments: .data, .bss): what a C
// library keeps in a static pointer is referenced, as valgrind's "still reachable". Taken
// before the tracker's lock: dl_iterate_phdr takes the loader's lock, which a dlopen in
// another thread holds while its mallocs wait for the tracker's.
Spans c_globals() {
    Segments segments{reinterpret_cast<uintptr_t>(&add_writable_segments), {}};
    dl_iterate_phdr(add_writable_segments, &segments);
    return std::move(segments.found);
}

// A static type (no tp_traverse of its own): what it refers to. Each pointer is only looked up
// in the census (3.12 keeps a static builtin type's subclasses as an index there, no pointer).
void visit_static_type(PyTypeObject* type, Marker& marker) {
    // tp_subclasses is a void* from 3.12 (an index for static builtin types): looked up only.
    auto* subclasses = static_cast<PyObject*>(static_cast<void*>(type->tp_subclasses));
    std::initializer_list<PyObject*> fields = {
        type->tp_dict, type->tp_bases, type->tp_mro,
        subclasses,    type->tp_cache, reinterpret_cast<PyObject*>(type->tp_base)};
    for (PyObject* field : fields) {
        visit_referent(field, &marker);
    }
}

// An object the collector does not traverse (a code object, a C extension's plain object): the
// words of its memory that are census objects (its fields are its references; an object has no
// spare capacity where a stale pointer could lie, unlike a list's item array).
void visit_untraversed(PyObject* object, Marker& marker) {
    const auto* words = reinterpret_cast<PyObject* const*>(object);
    uint64_t size = object_size(object);
    for (uint64_t w = 2; w < size / sizeof(PyObject*); ++w) {  // after refcount and type
        visit_referent(words[w], &marker);
    }
}

// Pass 1: the census's objects the roots reach; false if the deadline came first.
bool mark_objects(Marker& marker, PyObject* roots, int64_t deadline) {
    Census& census = marker.census;
    std::unordered_map<uint32_t, size_t> locals_of;  // frame -> its entry in frame_locals
    for (size_t f = 0; f < census.frame_locals.size(); ++f) {
        locals_of.emplace(census.frame_locals[f].first, f);
    }
    for (Py_ssize_t r = 0; r < PyList_GET_SIZE(roots); ++r) {
        visit_referent(PyList_GET_ITEM(roots, r), &marker);
    }
    for (size_t head = 0; head < marker.queue.size(); ++head) {
        uint32_t j = marker.queue[head];
        PyObject* object = census.objects[j];
        if (PyObject_IS_GC(object) && Py_TYPE(object)->tp_traverse != nullptr) {
            Py_TYPE(object)->tp_traverse(object, visit_referent, &marker);
        } else if (PyType_Check(object)) {
            visit_static_type(reinterpret_cast<PyTypeObject*>(object), marker);
        } else if (!is_data(object)) {
            visit_untraversed(object, marker);
        }
        auto frame = locals_of.find(j);
        if (frame != locals_of.end()) {
            for (uint32_t value : census.frame_locals[frame->second].second) marker.mark(value);
        }
        if (head % kClockEvery == 0 && monotonic_ns() > deadline) {
            return false;
        }
    }
    return true;
}

// The collector's links, right before a tracked object (PyGC_Head, two words on 3.10-3.13).
constexpr uintptr_t kGcHeadBytes = 2 * sizeof(uintptr_t);

// The readable mappings of the process (/proc/self/maps), merged where they touch. A block
// the live table holds may be gone: freed through a path no hook sees (a library's own free),
// its pages unmapped. Reading it would crash the program, so memory is read only inside these.
class Mappings {
  public:
    Mappings() {
        int fd = ::open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
        if (fd < 0) return;
        std::string text;
        char chunk[65536];
        for (ssize_t n; (n = ::read(fd, chunk, sizeof(chunk))) > 0;) text.append(chunk, n);
        ::close(fd);
        for (size_t at = 0; at < text.size();) {
            size_t end = text.find('\n', at);
            if (end == std::string::npos) end = text.size();
            add(text.c_str() + at);
            at = end + 1;
        }
    }

    [[nodiscard]] bool contains(uintptr_t start, uint64_t bytes) const {
        auto after =
            std::upper_bound(ranges_.begin(), ranges_.end(), start,
                             [](uintptr_t address, const std::pair<uintptr_t, uintptr_t>& range) {
                                 return address < range.first;
                             });
        if (after == ranges_.begin()) return false;
        const auto& range = *(after - 1);
        return start >= range.first && bytes <= range.second - start;
    }

  private:
    void add(const char* line) {
        char* rest = nullptr;
        uintptr_t low = std::strtoull(line, &rest, 16);
        if (rest == nullptr || *rest != '-') return;
        uintptr_t high = std::strtoull(rest + 1, &rest, 16);
        if (rest == nullptr || rest[0] != ' ' || rest[1] != 'r') return;
        if (!ranges_.empty() && ranges_.back().second == low) {
            ranges_.back().second = high;
        } else {
            ranges_.emplace_back(low, high);
        }
    }

    std::vector<std::pair<uintptr_t, uintptr_t>> ranges_;  // [low, high), in address order
};

// Pass 2's state: the blocks counted, per row, and the memory left to scan.
struct Blocks {
    Aggregate& aggregate;
    Mappings readable;  // read under the lock: no hooked unmap can run meanwhile
    // Every census object's block (reached by references only), to its object's offset in it.
    FlatMap<uint32_t> object_blocks;
    FlatMap<uint32_t> counted;    // raw blocks and buffers (an object's block is met once)
    FlatMap<uint32_t> row_index;  // row + 1 -> index in rows
    std::vector<ReferencedRow> rows;
    std::vector<std::pair<uintptr_t, uint64_t>> to_scan;  // (start, bytes) left to scan

    // Counts the live block at start (once, unless it is an object's); its size, 0 if not live
    // or counted already.
    uint64_t count(uintptr_t start, bool once) {
        uint64_t size = 0;
        uint32_t row = 0;
        return aggregate.find_row(start, &size, &row) && add(start, size, row, once) ? size : 0;
    }

    bool add(uintptr_t start, uint64_t size, uint32_t row, bool once) {
        bool inserted = false;
        if (once && (counted.insert(start, &inserted) == nullptr || !inserted)) return false;
        uint32_t* index = row_index.insert(uint64_t{row} + 1, &inserted);
        if (index == nullptr) return false;  // out of memory: not counted, so lost (a ceiling)
        if (inserted) {
            *index = static_cast<uint32_t>(rows.size());
            rows.push_back({row, 0, 0});
        }
        rows[*index].count += 1;
        rows[*index].bytes += static_cast<int64_t>(size);
        return true;
    }

    // A word that may point at a live block of no census object: counted and queued.
    void visit_word(uintptr_t word) {
        // Most words that point anywhere point at census objects: settled without the live
        // table (a plain object's block is its address; a tracked one's starts with the links).
        const uint32_t* below = object_blocks.find(word - kGcHeadBytes);
        if (object_blocks.find(word) != nullptr || (below != nullptr && *below == kGcHeadBytes)) {
            return;
        }
        uint64_t size = 0;
        uint32_t row = 0;
        uintptr_t block = word;
        // Or at an object the census does not hold (in a free list; 3.10's frame a code object
        // keeps for its next call): its address, after the collector's links its block starts
        // with.
        if (!aggregate.find_row(block, &size, &row)) {
            block = word - kGcHeadBytes;
            if (!aggregate.find_row(block, &size, &row) || size <= kGcHeadBytes) return;
        }
        if (add(block, size, row, true)) {
            to_scan.emplace_back(block, size);
        }
    }

    // Every word of [start, start + bytes) that starts a live block of no object.
    bool scan(uintptr_t start, uint64_t bytes, int64_t deadline) {
        if (!readable.contains(start, bytes)) return true;
        const auto* words = reinterpret_cast<const uintptr_t*>(start);
        for (uint64_t w = 0; w < bytes / sizeof(uintptr_t); ++w) {
            uintptr_t word = words[w];
            // Blocks are at least 8-aligned; small integers and odd values are no pointers.
            if ((word & 7) == 0 && word >= 4096) visit_word(word);
            if (w % kClockEvery == kClockEvery - 1 && monotonic_ns() > deadline) return false;
        }
        return true;
    }
};

uintptr_t block_of(PyObject* object) {
    return reinterpret_cast<uintptr_t>(object) - memlens_preheader_size(Py_TYPE(object));
}

// Queues the memory of an object to scan: its pre-header but the collector's links (3.11/3.12
// keep the managed dict and values pointers there), and its body: the block when the tracker
// saw it (size > 0), else the type's size (an object from before tracking may own new blocks).
void scan_object(PyObject* object, uintptr_t block, uint64_t size,
                 std::vector<std::pair<uintptr_t, uint64_t>>* to_scan) {
    auto body = reinterpret_cast<uintptr_t>(object);
    uintptr_t links = PyObject_IS_GC(object) ? kGcHeadBytes : 0;
    if (body - block > links) {
        to_scan->emplace_back(block, body - block - links);
    }
    if (size == 0) {
        size = object_size(object) + (body - block);
    }
    to_scan->emplace_back(body, size - (body - block));
}

// Pass 2, under the lock: false if the deadline came first.
bool mark_blocks(const Marker& marker, const Spans& globals, int64_t deadline, Blocks& blocks) {
    const Census& census = marker.census;
    for (PyObject* object : census.objects) {  // first: no scan may count an object's block
        bool inserted = false;
        uintptr_t block = block_of(object);
        if (uint32_t* offset = blocks.object_blocks.insert(block, &inserted)) {
            *offset = static_cast<uint32_t>(reinterpret_cast<uintptr_t>(object) - block);
        }
    }
    for (const auto& [start, bytes] : globals) {
        if (!blocks.scan(start, bytes, deadline)) return false;
    }
    for (uint32_t j : marker.queue) {
        PyObject* object = census.objects[j];
        uintptr_t block = block_of(object);
        uint64_t size = blocks.count(block, false);
        if (!is_data(object)) {
            scan_object(object, block, size, &blocks.to_scan);
        }
        // A buffer is data: counted, not scanned (a numpy array's gigabytes hold no pointers).
        if (j < census.buffers.size() && census.buffers[j] != nullptr) {
            (void)blocks.count(reinterpret_cast<uintptr_t>(census.buffers[j]), true);
        }
    }
    for (size_t k = 0; k < blocks.to_scan.size(); ++k) {
        auto [start, bytes] = blocks.to_scan[k];
        if (!blocks.scan(start, bytes, deadline)) return false;
    }
    return true;
}

}  // namespace

ReferencedRecord mark_referenced(const Guard& guard, Census& census, PyObject* roots,
                                 int64_t deadline) {
    ReferencedRecord record;
    Marker marker{census, std::vector<bool>(census.objects.size(), false), {}};
    record.complete = census.complete && mark_objects(marker, roots, deadline);
    Spans globals = c_globals();
    LockedTables tables(guard, S.tables);
    if (!tracking()) {
        record.complete = false;
        return record;
    }
    Blocks blocks{tables->aggregate, {}, {}, {}, {}, {}, {}};
    record.complete = mark_blocks(marker, globals, deadline, blocks) && record.complete;
    record.rows = std::move(blocks.rows);
    std::sort(record.rows.begin(), record.rows.end(),
              [](const ReferencedRow& a, const ReferencedRow& b) { return a.row < b.row; });
    return record;
}

}  // namespace memlens
