// Reachability at exit (reach.h). Two passes, GIL and guard held. (1) Objects: breadth first
// from the roots over the census's graph (what tp_traverse and code objects' fields gave), the
// running frames' locals, static types' fields and the fields of objects the census does not
// traverse, never through memlens's own (excluded) objects. (2) Blocks, under the tracker's
// lock: each reached object's block and the buffer it exports, then a scan of the reached memory
// and the C globals for words that start another live block that is no object's, transitively.
//
// Objects are reached by their references only, never by a word found in memory: the
// interpreter's free lists (C globals) keep stale pointers to objects handed out again (a list
// popped from the free list and now in an unreachable cycle), as a list's spare capacity may.
// An object's memory is scanned without the collector's links in its pre-header, which chain
// every tracked object.
#include "reach.h"

#include <frameobject.h>  // PyFrame_Check (3.10: not in Python.h)

#include <dlfcn.h>
#include <fcntl.h>
#include <link.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <string>
#include <unordered_map>

#include "address_set.h"
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

// The bytes of an object's body (of body_size) that may hold pointers: a code object's fixed
// fields only. From 3.11 its bytecode follows them in its block, and bytecode (with its inline
// caches: versions, indices, borrowed pointers) neither references an object nor addresses a
// block.
uint64_t fields_size(PyObject* object, uint64_t body_size) {
    if (!PyCode_Check(object)) return body_size;
    return std::min(body_size, static_cast<uint64_t>(Py_TYPE(object)->tp_basicsize));
}

struct Marker {
    Census& census;
    std::vector<bool> marked;
    MappedVector<uint32_t> queue;  // mapped and reserved: its growth is not left in the heap

    void mark(uint32_t j) {
        if (marked[j] || (j < census.excluded.size() && census.excluded[j])) return;
        marked[j] = true;
        queue.push_back(j);
    }
};

int visit_referent(PyObject* object, void* arg) {
    auto* marker = static_cast<Marker*>(arg);
    uint32_t j = marker->census.index_of(object);
    if (j != kNoObject) marker->mark(j);
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

// An object the census does not traverse (a C extension's plain object): the
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
        if (head + kPrefetchAhead < marker.queue.size()) {
            prefetch_for_write(census.objects[marker.queue[head + kPrefetchAhead]]);
        }
        uint32_t j = marker.queue[head];
        PyObject* object = census.objects[j];
        if (census_traverses(object)) {
            // What the census visited (no Python code ran since).
            for (uint32_t e = census.referents_start[j]; e < census.referents_start[j + 1]; ++e) {
                marker.mark(census.referents[e]);
            }
        } else if (PyType_Check(object)) {
            visit_static_type(reinterpret_cast<PyTypeObject*>(object), marker);
        } else if (!is_data(object)) {
            visit_untraversed(object, marker);
        }
        if (PyFrame_Check(object)) {  // a type compare, not a lookup per object
            auto frame = locals_of.find(j);
            if (frame != locals_of.end()) {
                for (uint32_t value : census.frame_locals[frame->second].second) {
                    marker.mark(value);
                }
            }
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

    // The range found last is tried first: most spans lie in a few big heap mappings.
    [[nodiscard]] bool contains(uintptr_t start, uint64_t bytes) {
        if (start >= last_.first && start < last_.second && bytes <= last_.second - start) {
            return true;
        }
        auto after =
            std::upper_bound(ranges_.begin(), ranges_.end(), start,
                             [](uintptr_t address, const std::pair<uintptr_t, uintptr_t>& range) {
                                 return address < range.first;
                             });
        if (after == ranges_.begin()) return false;
        const auto& range = *(after - 1);
        if (start >= range.second) {
            return false;  // in a gap after it (a debug build on sympy met none)
        }
        last_ = range;
        return bytes <= range.second - start;
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
    std::pair<uintptr_t, uintptr_t> last_{0, 0};
};

// Where blocks may be: 8-aligned (malloc's are 16-aligned), past the first page, below the top of
// user space (x86-64 and arm64: 48 bits). A word that is not is a number, never looked up.
bool may_point(uintptr_t word) {
    constexpr uintptr_t kFirstPage = 4096;
    constexpr uintptr_t kUserTop = uintptr_t{1} << 48;
    return (word & 7) == 0 && word - kFirstPage < kUserTop - kFirstPage;
}

// Pass 2's state: the blocks counted, per row, and the raw blocks left to scan.
struct Blocks {
    Aggregate& aggregate;
    int64_t deadline;
    Mappings readable;  // read under the lock: no hooked unmap can run meanwhile
    // Every census object's block, and the address of an object whose block starts with the
    // collector's links only: a word pointing there is the object (reached by references only).
    AddressSet objects;
    AddressSet counted;             // raw blocks and buffers (an object's block is met once)
    FlatMap<uint32_t> odd_counted;  // the same for a buffer that is not 8-aligned
    // Per tracker row, its index in rows + 1 (0: none yet): 4 B a row, where a hash table from
    // row to index took 16 B a slot at most half full (sympy: 45,000 rows met of 178,000).
    MappedVector<uint32_t> row_index;
    std::vector<ReferencedRow> rows;
    Spans to_scan;         // (start, bytes) of raw blocks found and not scanned yet
    uint64_t scanned = 0;  // words, for the clock
    // Words lately found to start no live block (a static type, a static string, over and over):
    // looked up once each while they stay here. The live table does not change under the lock.
    std::array<uintptr_t, 4096> no_block{};

    // Counts the live block at start (once, unless it is an object's); its size, 0 if not live
    // or counted already.
    uint64_t count(uintptr_t start, bool once) {
        uint64_t size = 0;
        uint32_t row = 0;
        return aggregate.find_row(start, &size, &row) && add(start, size, row, once) ? size : 0;
    }

    bool first_time(uintptr_t start) {
        if ((start & 7) == 0) return counted.insert(start);
        bool inserted = false;
        return odd_counted.insert(start, &inserted) != nullptr && inserted;
    }

    bool add(uintptr_t start, uint64_t size, uint32_t row, bool once) {
        if (once && !first_time(start)) return false;
        if (row >= row_index.size()) return false;  // no row is added under the lock
        uint32_t& index = row_index[row];
        if (index == 0) {
            rows.push_back({row, 0, 0});
            index = static_cast<uint32_t>(rows.size());
        }
        rows[index - 1].count += 1;
        rows[index - 1].bytes += static_cast<int64_t>(size);
        return true;
    }

    // A word that may point at a live block of no census object: counted and queued.
    void visit_word(uintptr_t word) {
        uintptr_t& known = no_block[(word >> 3) & (no_block.size() - 1)];
        if (known == word || objects.contains(word)) return;  // known: no object either
        uint64_t size = 0;
        uint32_t row = 0;
        uintptr_t block = word;
        // Or at an object the census does not hold (in a free list; 3.10's frame a code object
        // keeps for its next call): its address, after the collector's links its block starts
        // with.
        if (!aggregate.find_row(block, &size, &row)) {
            block = word - kGcHeadBytes;
            if (!aggregate.find_row(block, &size, &row) || size <= kGcHeadBytes) {
                known = word;
                return;
            }
        }
        if (add(block, size, row, true)) {
            to_scan.emplace_back(block, size);
        }
    }

    // Every word of [start, start + bytes) that starts a live block of no object.
    bool scan(uintptr_t start, uint64_t bytes) {
        if (!readable.contains(start, bytes)) return true;
        const auto* words = reinterpret_cast<const uintptr_t*>(start);
        for (uint64_t w = 0; w < bytes / sizeof(uintptr_t); ++w) {
            if (may_point(words[w])) visit_word(words[w]);
            if (++scanned % kClockEvery == 0 && monotonic_ns() > deadline) return false;
        }
        return true;
    }

    // Scans the raw blocks found until none is left (last found first: the stack stays short).
    bool drain() {
        while (!to_scan.empty()) {
            auto [start, bytes] = to_scan.back();
            to_scan.pop_back();
            if (!scan(start, bytes)) return false;
        }
        return true;
    }
};

// Scans the memory of an object: its pre-header but the collector's links (3.11/3.12 keep the
// managed dict and values pointers there), and its body: the block when the tracker saw it
// (size > 0), else the type's size (an object from before tracking may own new blocks).
bool scan_object(PyObject* object, uintptr_t block, uint64_t size, Blocks& blocks) {
    auto body = reinterpret_cast<uintptr_t>(object);
    uintptr_t links = PyObject_IS_GC(object) ? kGcHeadBytes : 0;
    if (body - block > links && !blocks.scan(block, body - block - links)) {
        return false;
    }
    return blocks.scan(
        body, fields_size(object, size == 0 ? object_size(object) : size - (body - block)));
}

// Pass 2, under the lock: false if the deadline came first.
bool mark_blocks(const Marker& marker, const Spans& globals, Blocks& blocks) {
    const Census& census = marker.census;
    const MappedVector<PyObject*>& objects = census.objects;
    for (size_t i = 0; i < objects.size(); ++i) {  // first: no scan may count an object's block
        if (i + kPrefetchAhead < objects.size()) prefetch_for_write(objects[i + kPrefetchAhead]);
        PyObject* object = objects[i];
        auto address = reinterpret_cast<uintptr_t>(object);
        uintptr_t block = block_of(object);
        blocks.objects.insert(block);
        if (address - block == kGcHeadBytes) blocks.objects.insert(address);
    }
    for (const auto& [start, bytes] : globals) {
        if (!blocks.scan(start, bytes) || !blocks.drain()) return false;
    }
    const MappedVector<uint32_t>& queue = marker.queue;
    constexpr size_t kAhead = kPrefetchAhead;
    for (size_t k = 0; k < queue.size(); ++k) {
        // The object, then its block's record once its type can be read.
        if (k + 2 * kAhead < queue.size()) prefetch_for_write(objects[queue[k + 2 * kAhead]]);
        if (k + kAhead < queue.size()) {
            blocks.aggregate.prefetch_small(block_of(objects[queue[k + kAhead]]));
        }
        uint32_t j = queue[k];
        PyObject* object = objects[j];
        uintptr_t block = block_of(object);
        uint64_t size = blocks.count(block, false);
        if (!is_data(object) && (!scan_object(object, block, size, blocks) || !blocks.drain())) {
            return false;
        }
        // A buffer is data: counted, not scanned (a numpy array's gigabytes hold no pointers).
        if (void* buffer = census.buffer_of(j)) {
            (void)blocks.count(reinterpret_cast<uintptr_t>(buffer), true);
        }
    }
    return true;
}

}  // namespace

ReferencedRecord mark_referenced(const Guard& guard, Census& census, PyObject* roots,
                                 int64_t deadline) {
    ReferencedRecord record;
    Marker marker{census, std::vector<bool>(census.objects.size(), false), {}};
    marker.queue.reserve(census.objects.size());
    record.complete = census.complete && mark_objects(marker, roots, deadline);
    census.release_index();  // pass 2 looks up blocks only
    Spans globals = c_globals();
    LockedTables tables(guard, S.tables);
    if (!tracking()) {
        record.complete = false;
        return record;
    }
    Blocks blocks{tables->aggregate, deadline, {}, {}, {}, {}, {}, {}, {}};
    blocks.row_index.assign(tables->aggregate.row_count(), 0);
    record.complete = mark_blocks(marker, globals, blocks) && record.complete;
    record.rows = std::move(blocks.rows);
    std::sort(record.rows.begin(), record.rows.end(),
              [](const ReferencedRow& a, const ReferencedRow& b) { return a.row < b.row; });
    return record;
}

}  // namespace memlens
