// The capture file writer: a small msgpack encoder and the layout of DESIGN.md "Capture file"
// (version 2). capture.py is the reader; the two must agree.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "flat_map.h"

namespace memlens {

// A capture's bytes (encoded or compressed). Not from malloc: a multi-megabyte block freed to
// malloc raises glibc's mmap threshold, and the program's own medium buffers then stay in its
// heap after they are freed.
using CaptureBytes = std::basic_string<char, std::char_traits<char>, table_memory::Allocator<char>>;

struct CaptureMeta {
    std::vector<std::string> argv;
    int64_t pid = 0;
    std::string python_version;
    std::string platform;
    std::string memlens_version;
    int64_t start_ns = 0;  // wall clock, since the epoch
    int64_t end_ns = 0;
    bool python_allocators = true;
    int64_t temporary_threshold = 1;
    std::optional<int64_t> exit_code;
};

struct FrameRecord {    // one location: a line inside a function
    uint32_t function;  // string index
    uint32_t file;      // string index
    int32_t line;
    int32_t first_line;
};

struct StackNode {  // trie node; parent < own index, -1 for a root
    int32_t parent;
    int32_t frame;
};

struct StatsRow {  // one (stack, thread, domain) row, values final
    int32_t stack;
    uint32_t thread;
    uint32_t domain;
    int64_t alloc_count, alloc_bytes, peak_count, peak_bytes;
    int64_t leak_count, leak_bytes, temp_count, temp_bytes;
};

// One bucket of the exact size histogram: sizes in [2^bucket_log2, 2^(bucket_log2 + 1)).
struct SizeCell {
    uint32_t domain;
    int32_t bucket_log2;  // -1: 0-byte requests
    int64_t count, bytes;
};

struct AllocatorUse {  // what one allocator function allocated
    const char* name;
    int64_t count, bytes;
};

struct CaptureTotals {
    int64_t alloc_count, alloc_bytes, peak_bytes, peak_ns, leak_bytes, rss_peak;
};

struct ThreadRecord {
    uint32_t index;
    std::string name;
};

// Object snapshots (native/objects.h): live Python objects per (type, allocating stack), and
// who holds the biggest groups. Strings are indices into the capture's strings.
struct ObjectRow {
    uint32_t type;
    int32_t stack;  // -1: no Python frame
    int64_t count, bytes;
};

struct HolderStepRecord {
    uint32_t text;
    int32_t stack;  // where the holder was allocated, -1 when unknown
};

struct HolderRecord {
    uint32_t type;
    int32_t stack;
    int64_t count, bytes;
    std::string root;                     // module, class, frame, unreachable, unknown
    std::vector<HolderStepRecord> steps;  // nearest the objects first
};

// The exit snapshot's reachability (native/reach.h): per stats row, the blocks still live at
// exit that the program's roots reach. The writer clamps each to the row's leak at writing time.
struct ReferencedRow {
    uint32_t row;  // index in the stats rows
    int64_t count, bytes;
};

struct ReferencedRecord {
    bool complete = true;  // false: the time budget cut the marking (a floor)
    std::vector<ReferencedRow> rows;
};

struct SnapshotRecord {
    std::string label;
    int64_t t_ms = 0;
    std::vector<ObjectRow> objects;
    std::vector<HolderRecord> holders;
    bool complete = true;
    std::optional<ReferencedRecord> referenced;  // the exit snapshot's only
};

// Everything one capture holds. The writer only reads it.
struct CaptureView {
    bool complete = false;
    const CaptureMeta* meta = nullptr;
    const std::vector<std::string>* strings = nullptr;
    const MappedVector<FrameRecord>* frames = nullptr;
    const MappedVector<StackNode>* stacks = nullptr;
    // The stats rows, read one at a time: the writer encodes them column by column straight
    // from the live table (a copy was 14 MB at every checkpoint on sympy). Each row is read
    // twice and must read the same both times (the caller holds the tables' lock).
    size_t stats_count = 0;
    std::function<StatsRow(size_t)> stats_row;
    CaptureTotals totals{};
    const std::vector<int64_t>* timeline_t_ms = nullptr;
    const std::vector<int64_t>* timeline_heap = nullptr;
    const std::vector<int64_t>* timeline_rss = nullptr;
    std::vector<ThreadRecord> threads;
    const std::vector<SnapshotRecord>* snapshots = nullptr;  // written when not empty
    std::vector<SizeCell> sizes;
    std::vector<AllocatorUse> allocators;
};

[[nodiscard]] CaptureBytes encode_capture(const CaptureView& capture);

// What a capture file starts with when its msgpack body is zlib-compressed (DESIGN.md "Capture
// file"); capture.py reads both this and a bare msgpack body (captures written before it).
inline constexpr char kCompressedPrefix[] = "memlens-capture+zlib\n";

// The prefix, then the body as one zlib stream. Level 1: checkpoints are written every second
// while a run is live, and level 6 saves only a few percent more on captures.
[[nodiscard]] CaptureBytes compress_capture(const CaptureBytes& body, int level = 1);

// Writes a capture body to path compressed, atomically. Returns 0 or an errno.
[[nodiscard]] int write_capture(const std::string& path, const CaptureBytes& body);

// Writes data to path atomically (a temp file beside it, then rename). Returns 0 or an errno.
[[nodiscard]] int write_file_atomic(const std::string& path, const CaptureBytes& data);

}  // namespace memlens
