// Capture encoding: msgpack by hand (no dependency), columnar arrays as DESIGN.md specifies.
#include "writer.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <unistd.h>
#include <zlib.h>

namespace memlens {
namespace {

std::atomic<size_t> g_last_body_size{0};  // the last capture's encoded size, for the next one

// The bytes msgpack takes for value (put_integer writes exactly that many).
size_t integer_size(int64_t value) {
    if (value >= 0) {
        auto u = static_cast<uint64_t>(value);
        return u < 128 ? 1 : u <= 0xff ? 2 : u <= 0xffff ? 3 : u <= 0xffffffffULL ? 5 : 9;
    }
    return value >= -32         ? 1
           : value >= INT8_MIN  ? 2
           : value >= INT16_MIN ? 3
           : value >= INT32_MIN ? 5
                                : 9;
}

char* put_tagged(char* at, uint8_t tag, uint64_t value, int bytes) {
    *at++ = static_cast<char>(tag);
    for (int i = bytes - 1; i >= 0; --i) {
        *at++ = static_cast<char>((value >> (8 * i)) & 0xff);
    }
    return at;
}

// value as the smallest msgpack integer, at `at`; returns the end of what it wrote.
char* put_integer(char* at, int64_t value) {
    auto u = static_cast<uint64_t>(value);
    switch (integer_size(value)) {
        case 1:
            *at = static_cast<char>(static_cast<uint8_t>(u));
            return at + 1;
        case 2:
            return put_tagged(at, value >= 0 ? 0xcc : 0xd0, u, 1);
        case 3:
            return put_tagged(at, value >= 0 ? 0xcd : 0xd1, u, 2);
        case 5:
            return put_tagged(at, value >= 0 ? 0xce : 0xd2, u, 4);
        default:
            return put_tagged(at, value >= 0 ? 0xcf : 0xd3, u, 8);
    }
}

// Most stats values are below 128 (one byte): that case inline in the stats loops.
inline size_t small_first_size(int64_t value) {
    return static_cast<uint64_t>(value) < 128 ? 1 : integer_size(value);
}
inline char* put_small_first(char* at, int64_t value) {
    if (static_cast<uint64_t>(value) < 128) {
        *at = static_cast<char>(value);
        return at + 1;
    }
    return put_integer(at, value);
}

// The subset of msgpack a capture needs; every multi-byte value is big-endian.
class Msgpack {
  public:
    CaptureBytes out;

    void nil() { out.push_back(static_cast<char>(0xc0)); }
    void boolean(bool value) { out.push_back(static_cast<char>(value ? 0xc3 : 0xc2)); }

    void integer(int64_t value) {
        char bytes[9];
        out.append(bytes, put_integer(bytes, value) - bytes);
    }

    void str(const std::string& text) {
        size_t n = text.size();
        if (n < 32) {
            out.push_back(static_cast<char>(0xa0 | n));
        } else if (n <= 0xff) {
            tagged(0xd9, n, 1);
        } else if (n <= 0xffff) {
            tagged(0xda, n, 2);
        } else {
            tagged(0xdb, n, 4);
        }
        out.append(text.data(), text.size());
    }

    void array(size_t n) { header(n, 0x90, 0xdc, 0xdd); }
    void map(size_t n) { header(n, 0x80, 0xde, 0xdf); }

    template <class Items, class Get>
    void column(const Items& items, Get get) {
        array(items.size());
        for (const auto& item : items) {
            integer(static_cast<int64_t>(get(item)));
        }
    }

    // Each value minus the one before (format version 2, capture.py DELTA_COLUMNS).
    template <class Items, class Get>
    void deltas(const Items& items, Get get) {
        array(items.size());
        int64_t last = 0;
        for (const auto& item : items) {
            auto value = static_cast<int64_t>(get(item));
            integer(value - last);
            last = value;
        }
    }

    void ints(const std::vector<int64_t>& values) {
        array(values.size());
        for (int64_t v : values) {
            integer(v);
        }
    }

  private:
    void tagged(uint8_t tag, uint64_t value, int bytes) {
        out.push_back(static_cast<char>(tag));
        for (int i = bytes - 1; i >= 0; --i) {
            out.push_back(static_cast<char>((value >> (8 * i)) & 0xff));
        }
    }

    void header(size_t n, uint8_t fix, uint8_t tag16, uint8_t tag32) {
        if (n < 16) {
            out.push_back(static_cast<char>(fix | n));
        } else if (n <= 0xffff) {
            tagged(tag16, n, 2);
        } else {
            tagged(tag32, n, 4);
        }
    }
};

void encode_holder(Msgpack& m, const HolderRecord& h) {
    m.map(6);
    m.str("type");
    m.integer(h.type);
    m.str("stack");
    m.integer(h.stack);
    m.str("count");
    m.integer(h.count);
    m.str("bytes");
    m.integer(h.bytes);
    m.str("root");
    m.str(h.root);
    m.str("steps");
    m.array(h.steps.size());
    for (const HolderStepRecord& step : h.steps) {
        m.map(2);
        m.str("text");
        m.integer(step.text);
        m.str("stack");
        m.integer(step.stack);
    }
}

// The exit snapshot's `referenced` rows, each clamped to its row's leak now: a thread may free
// a block between the snapshot and the capture. Rows left empty are not written.
void encode_referenced(Msgpack& m, const CaptureView& c, const ReferencedRecord& referenced) {
    std::vector<ReferencedRow> rows;
    for (const ReferencedRow& r : referenced.rows) {
        if (r.row >= c.stats_count) continue;
        StatsRow now = c.stats_row(r.row);
        ReferencedRow kept{r.row, std::min(r.count, now.leak_count),
                           std::min(r.bytes, now.leak_bytes)};
        if (kept.count > 0 || kept.bytes > 0) rows.push_back(kept);
    }
    m.str("referenced");
    m.map(4);
    m.str("complete");
    m.boolean(referenced.complete);
    m.str("row");
    m.column(rows, [](const ReferencedRow& r) { return r.row; });
    m.str("count");
    m.column(rows, [](const ReferencedRow& r) { return r.count; });
    m.str("bytes");
    m.column(rows, [](const ReferencedRow& r) { return r.bytes; });
}

void encode_snapshots(Msgpack& m, const CaptureView& c) {
    const std::vector<SnapshotRecord>& snapshots = *c.snapshots;
    m.str("snapshots");
    m.array(snapshots.size());
    for (const SnapshotRecord& s : snapshots) {
        m.map(s.referenced ? 6 : 5);
        m.str("label");
        m.str(s.label);
        m.str("t_ms");
        m.integer(s.t_ms);
        m.str("complete");
        m.boolean(s.complete);
        m.str("objects");
        m.map(4);
        m.str("type");
        m.column(s.objects, [](const ObjectRow& r) { return r.type; });
        m.str("stack");
        m.column(s.objects, [](const ObjectRow& r) { return r.stack; });
        m.str("count");
        m.column(s.objects, [](const ObjectRow& r) { return r.count; });
        m.str("bytes");
        m.column(s.objects, [](const ObjectRow& r) { return r.bytes; });
        m.str("holders");
        m.array(s.holders.size());
        for (const HolderRecord& h : s.holders) {
            encode_holder(m, h);
        }
        if (s.referenced) {
            encode_referenced(m, c, *s.referenced);
        }
    }
}

// The stats columns in the order they are written, and one row's values for them (the stack as
// the change from the row before: format version 2's delta column).
constexpr const char* kStatsColumns[] = {"stack",       "thread",     "domain",     "alloc_count",
                                         "alloc_bytes", "peak_count", "peak_bytes", "leak_count",
                                         "leak_bytes",  "temp_count", "temp_bytes"};
constexpr size_t kStatsColumnCount = sizeof(kStatsColumns) / sizeof(kStatsColumns[0]);

std::array<int64_t, kStatsColumnCount> stats_values(const StatsRow& r, int64_t last_stack) {
    return {r.stack - last_stack, r.thread,     r.domain,     r.alloc_count,
            r.alloc_bytes,        r.peak_count, r.peak_bytes, r.leak_count,
            r.leak_bytes,         r.temp_count, r.temp_bytes};
}

// The stats table in two passes over the rows: one sizes each column, one writes every column
// at its own place. A pass per column read each row 11 times, and checkpoints do this under the
// tables' lock (the recursion bench's 300,000 rows: ~62 ms a checkpoint; two passes, ~25).
void encode_stats(Msgpack& m, const CaptureView& c) {
    std::array<size_t, kStatsColumnCount> sizes{};
    int64_t last_stack = 0;
    for (size_t i = 0; i < c.stats_count; ++i) {
        StatsRow row = c.stats_row(i);
        auto values = stats_values(row, last_stack);
        last_stack = row.stack;
        for (size_t k = 0; k < kStatsColumnCount; ++k) {
            sizes[k] += small_first_size(values[k]);
        }
    }
    std::array<size_t, kStatsColumnCount> offsets{};
    m.map(kStatsColumnCount);
    for (size_t k = 0; k < kStatsColumnCount; ++k) {
        m.str(kStatsColumns[k]);
        m.array(c.stats_count);
        offsets[k] = m.out.size();
        m.out.resize(m.out.size() + sizes[k]);
    }
    std::array<char*, kStatsColumnCount> cursors{};
    for (size_t k = 0; k < kStatsColumnCount; ++k) {
        cursors[k] = &m.out[offsets[k]];  // after the last resize: the buffer no longer moves
    }
    last_stack = 0;
    for (size_t i = 0; i < c.stats_count; ++i) {
        StatsRow row = c.stats_row(i);
        auto values = stats_values(row, last_stack);
        last_stack = row.stack;
        for (size_t k = 0; k < kStatsColumnCount; ++k) {
            cursors[k] = put_small_first(cursors[k], values[k]);
        }
    }
}

}  // namespace

CaptureBytes encode_capture(const CaptureView& c) {
    Msgpack m;
    // Room for the last body and an eighth more (bodies grow between checkpoints), not twice
    // a guess: 16 B a stats row, 6 a trie node and 10 a frame is about what they take.
    size_t guess = 4096 + c.stats_count * 16 + c.stacks->size() * 6 + c.frames->size() * 10;
    size_t last = g_last_body_size.load(std::memory_order_relaxed);
    m.out.reserve(std::max(guess, last + last / 8));
    bool has_snapshots = c.snapshots != nullptr && !c.snapshots->empty();
    m.map(has_snapshots ? 14 : 13);

    m.str("magic");
    m.str("memlens-capture");
    m.str("version");
    m.integer(2);
    m.str("complete");
    m.boolean(c.complete);

    const CaptureMeta& meta = *c.meta;
    m.str("meta");
    m.map(meta.exit_code ? 11 : 10);
    m.str("argv");
    m.array(meta.argv.size());
    for (const std::string& arg : meta.argv) {
        m.str(arg);
    }
    m.str("pid");
    m.integer(meta.pid);
    m.str("python_version");
    m.str(meta.python_version);
    m.str("platform");
    m.str(meta.platform);
    m.str("memlens_version");
    m.str(meta.memlens_version);
    m.str("start_ns");
    m.integer(meta.start_ns);
    m.str("end_ns");
    m.integer(meta.end_ns);
    m.str("python_allocators");
    m.boolean(meta.python_allocators);
    m.str("native_traces");
    m.boolean(false);
    m.str("temporary_threshold");
    m.integer(meta.temporary_threshold);
    if (meta.exit_code) {
        m.str("exit_code");
        m.integer(*meta.exit_code);
    }

    // Thread names go after the tracker's strings (their indices start at strings->size()),
    // then the allocators' names.
    const std::vector<std::string>& strings = *c.strings;
    const size_t first_allocator = strings.size() + c.threads.size();
    m.str("strings");
    m.array(first_allocator + c.allocators.size());
    for (const std::string& s : strings) {
        m.str(s);
    }
    for (const ThreadRecord& t : c.threads) {
        m.str(t.name);
    }
    for (const AllocatorUse& a : c.allocators) {
        m.str(a.name);
    }

    const MappedVector<FrameRecord>& frames = *c.frames;
    m.str("frames");
    m.map(4);
    m.str("function");
    m.column(frames, [](const FrameRecord& f) { return f.function; });
    m.str("file");
    m.column(frames, [](const FrameRecord& f) { return f.file; });
    m.str("line");
    m.deltas(frames, [](const FrameRecord& f) { return f.line; });
    m.str("first_line");
    m.column(frames, [](const FrameRecord& f) { return f.first_line; });

    m.str("stacks");
    m.map(2);
    // How far back each node's parent is (node + 1 for a root): mostly 1.
    m.str("parent");
    m.array(c.stacks->size());
    for (size_t i = 0; i < c.stacks->size(); ++i) {
        m.integer(static_cast<int64_t>(i) - (*c.stacks)[i].parent);
    }
    m.str("frame");
    m.deltas(*c.stacks, [](const StackNode& n) { return n.frame; });

    m.str("stats");
    encode_stats(m, c);

    const CaptureTotals& t = c.totals;
    m.str("totals");
    m.map(6);
    m.str("alloc_count");
    m.integer(t.alloc_count);
    m.str("alloc_bytes");
    m.integer(t.alloc_bytes);
    m.str("peak_bytes");
    m.integer(t.peak_bytes);
    m.str("peak_ns");
    m.integer(t.peak_ns);
    m.str("leak_bytes");
    m.integer(t.leak_bytes);
    m.str("rss_peak");
    m.integer(t.rss_peak);

    m.str("timeline");
    m.map(3);
    m.str("t_ms");
    m.ints(*c.timeline_t_ms);
    m.str("heap");
    m.ints(*c.timeline_heap);
    m.str("rss");
    m.ints(*c.timeline_rss);

    m.str("threads");
    m.map(2);
    m.str("id");
    m.column(c.threads, [](const ThreadRecord& r) { return r.index; });
    m.str("name");
    m.array(c.threads.size());
    for (size_t i = 0; i < c.threads.size(); ++i) {
        m.integer(static_cast<int64_t>(strings.size() + i));
    }

    m.str("sizes");
    m.map(4);
    m.str("domain");
    m.column(c.sizes, [](const SizeCell& s) { return s.domain; });
    m.str("bucket_log2");
    m.column(c.sizes, [](const SizeCell& s) { return s.bucket_log2; });
    m.str("count");
    m.column(c.sizes, [](const SizeCell& s) { return s.count; });
    m.str("bytes");
    m.column(c.sizes, [](const SizeCell& s) { return s.bytes; });

    m.str("allocators");
    m.map(3);
    m.str("name");
    m.array(c.allocators.size());
    for (size_t i = 0; i < c.allocators.size(); ++i) {
        m.integer(static_cast<int64_t>(first_allocator + i));
    }
    m.str("count");
    m.column(c.allocators, [](const AllocatorUse& a) { return a.count; });
    m.str("bytes");
    m.column(c.allocators, [](const AllocatorUse& a) { return a.bytes; });

    if (has_snapshots) {
        encode_snapshots(m, c);
    }
    g_last_body_size.store(m.out.size(), std::memory_order_relaxed);
    return std::move(m.out);
}

CaptureBytes compress_capture(const CaptureBytes& body, int level) {
    constexpr size_t kChunk = 256 * 1024;
    CaptureBytes out(kCompressedPrefix);
    z_stream z{};
    if (deflateInit(&z, level) != Z_OK) {
        return body;  // no memory for zlib's state: the bare body is still a capture
    }
    z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(body.data()));
    z.avail_in = static_cast<uInt>(body.size());  // the body is far below 4 GiB (reader: 1 GiB)
    int status = Z_OK;
    while (status == Z_OK) {
        // Grown a chunk at a time, not by deflateBound: the output is ~1/5 of the body.
        size_t used = out.size();
        out.resize(used + kChunk);
        z.next_out = reinterpret_cast<Bytef*>(&out[used]);
        z.avail_out = static_cast<uInt>(kChunk);
        status = deflate(&z, Z_FINISH);
        out.resize(used + kChunk - z.avail_out);
    }
    deflateEnd(&z);
    return status == Z_STREAM_END ? out : body;
}

int write_capture(const std::string& path, const CaptureBytes& body) {
    return write_file_atomic(path, compress_capture(body));
}

int write_file_atomic(const std::string& path, const CaptureBytes& data) {
    std::string temp = path + ".tmp" + std::to_string(getpid());
    int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        return errno;
    }
    size_t done = 0;
    while (done < data.size()) {
        ssize_t n = ::write(fd, data.data() + done, data.size() - done);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            int error = errno;
            ::close(fd);
            ::unlink(temp.c_str());
            return error;
        }
        done += static_cast<size_t>(n);
    }
    if (::close(fd) != 0 || ::rename(temp.c_str(), path.c_str()) != 0) {
        int error = errno;
        ::unlink(temp.c_str());
        return error;
    }
    return 0;
}

}  // namespace memlens
