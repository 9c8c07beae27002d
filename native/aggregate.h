// Aggregation: per-(stack, thread, domain) rows with the exact O(1) high-watermark of
// DESIGN.md, and the live tables (small blocks, other blocks, mmap regions) that frees and
// munmaps are matched against. Plain C++ (no Python): the C++ tests drive it directly.
//
// Not thread-safe: the tracker keeps its Aggregate inside a Lockable (lock.h). The hot calls are
// defined here so that they inline into the hooks' event functions.
#pragma once

#include <algorithm>
#include <atomic>
#include <climits>
#include <cstdint>
#include <map>
#include <vector>

#include "chunked.h"
#include "clock.h"
#include "domain.h"
#include "flat_map.h"
#include "small_blocks.h"
#include "writer.h"

namespace memlens {

constexpr uint32_t kNoRow = UINT32_MAX;

// 80 B (sympy's bench makes 178,000 of them).
struct Row {
    int32_t stack;
    uint32_t thread : 30;  // the row key keeps 22 bits of it
    uint32_t domain : 2;
    int64_t alloc_count, alloc_bytes;
    int64_t live_count, live_bytes;
    int64_t at_peak_count, at_peak_bytes;
    int64_t temp_count, temp_bytes;
    uint64_t touched;  // index of the last event that changed live_*
};
static_assert(sizeof(Row) == 80, "rows are most of the tracker's memory on varied stacks");

// 8 bytes, so that a live-table slot is 16: the table is the largest thing the hooks touch
// and its probes are cache misses.
struct LiveBlock {
    uint64_t size : 40;  // up to 1 TiB per block
    uint64_t row : 24;   // up to 16M (stack, thread, domain) rows
};
static_assert(sizeof(LiveBlock) == 8, "a live-table slot is 16 bytes");
constexpr uint32_t kMaxRows = (1u << 24) - 1;

// A mapping's extent is whole pages (what munmap works on); the bytes charged for it are what the
// program asked for (mmap(-1, 2048) is 2,048 B, as Memray counts it): a prefix of the extent.
struct MmapRegion {
    uint64_t length;   // the extent, in bytes (page-rounded)
    uint64_t counted;  // the charged bytes: [start, start + counted) of this region
    uint32_t row;
    bool holds_count;  // a region split by munmap counts as one allocation
};

// Exact sizes, counted as each allocation is: per (domain, power-of-two bucket) and per
// allocator function. Bucket 0 holds 0-byte requests, bucket k + 1 the sizes in [2^k, 2^(k+1)).
// A count and its bytes side by side: one cache line per event.
struct SizeCounts {
    static constexpr int kBuckets = 65;
    struct Cell {
        int64_t count, bytes;
    };
    Cell buckets[kDomainCount][kBuckets];
    Cell allocators[kAllocatorCount];

    static int bucket(uint64_t size) noexcept { return size ? 64 - __builtin_clzll(size) : 0; }
};

// A thread's most recent allocations: a block freed within `threshold` allocations of its own
// (Memray's --temporary-allocation-threshold; 1 by default, as there: a buffer freed right after
// its replacement was allocated, as when a vector grows) is temporary.
struct TemporaryWindow {
    static constexpr int kMaxThreshold = 64;  // the free path scans the window
    uintptr_t recent[kMaxThreshold + 1] = {};
    int size = 2;  // threshold + 1: the block itself and the allocations after it
    int next = 0;

    explicit TemporaryWindow(int threshold = 1)
        : size(std::clamp(threshold, 0, kMaxThreshold) + 1) {}
    void allocated(uintptr_t address) noexcept {
        recent[next] = address;
        next = next + 1 == size ? 0 : next + 1;
    }
    // Whether address is one of the window's blocks (then it leaves the window).
    bool take(uintptr_t address) noexcept {
        for (int i = 0; i < size; ++i) {
            if (recent[i] == address) {
                recent[i] = 0;
                return true;
            }
        }
        return false;
    }
};

class Aggregate {
  public:
    Aggregate() = default;
    Aggregate(const Aggregate&) = delete;
    Aggregate& operator=(const Aggregate&) = delete;

    // The row of (stack, thread, domain), made on first use; kNoRow when the table is full or
    // out of memory (the event is then dropped rather than charged to a wrong row).
    [[nodiscard]] uint32_t row(int32_t stack, uint32_t thread, Domain domain);

    // A block of size bytes was allocated at address and is charged to row. A block already
    // recorded there was freed behind our back (through a free() pointer copied before the
    // hooks went in): it is gone. False if out of memory (nothing recorded).
    MEMLENS_ALWAYS_INLINE bool alloc(uintptr_t address, uint64_t size, uint32_t row,
                                     Allocator allocator, TemporaryWindow* window) {
        if (SmallBlocks::fits(address, size, row)) {
            SmallBlocks::Block replaced{};
            if (!small_.insert(address, static_cast<uint32_t>(size), row, &replaced)) {
                return false;
            }
            if (replaced.size != 0) {
                change_live(replaced.row, -1, -static_cast<int64_t>(replaced.size));
            }
        } else if (!insert_large(address, size, row)) {
            return false;
        }
        count_alloc(row, size, allocator);
        window->allocated(address);
        return true;
    }

    // The block at address was freed: its size, 0 if it is not one of ours (allocated before
    // tracking, or not by a hooked allocator). A block that is its thread's last allocation is
    // a temporary when count_temporary (realloc's free is not); window may be null.
    MEMLENS_ALWAYS_INLINE int64_t free(uintptr_t address, bool count_temporary,
                                       TemporaryWindow* window) {
        SmallBlocks::Block small{};
        if (!small_.erase(address, &small)) {
            return free_large(address, count_temporary, window);
        }
        return freed(small.row, small.size, address, count_temporary, window);
    }

    // The live block that starts at address: its size and the stack it was allocated at (an
    // object snapshot's lookup, native/objects.h). False if it is not one of ours.
    [[nodiscard]] bool find(uintptr_t address, uint64_t* size, int32_t* stack) {
        uint32_t row = 0;
        if (!find_row(address, size, &row)) {
            return false;
        }
        *stack = rows_[row].stack;
        return true;
    }
    // The same with the block's row (the exit snapshot's reachability, native/reach.h).
    [[nodiscard]] bool find_row(uintptr_t address, uint64_t* size, uint32_t* row) {
        SmallBlocks::Block small{};
        if (small_.find(address, &small)) {
            *size = small.size;
            *row = small.row;
            return true;
        }
        if (const LiveBlock* block = live_.find(address)) {
            *size = block->size;
            *row = static_cast<uint32_t>(block->row);
            return true;
        }
        return false;
    }

    // A mapping of length bytes at start (a mapping over older ones replaces them).
    // A mapping of `requested` bytes whose pages span `length` bytes at start.
    void mmap(uintptr_t start, uint64_t length, uint64_t requested, uint32_t row,
              Allocator allocator, TemporaryWindow* window);
    // [start, end) was unmapped: the regions in it shrink, split or go.
    void munmap(uintptr_t start, uintptr_t end);
    [[nodiscard]] bool has_mappings() const noexcept { return !mmaps_.empty(); }

    // Starts loading the record of a block about to be allocated or freed (read racily by
    // design: a stale table only wastes the prefetch, which never faults).
    void prefetch(uintptr_t address, uint64_t size) const noexcept {
        if (size > SmallBlocks::kMaxSize) {
            live_.prefetch(address);
        } else {
            small_.prefetch(address);
        }
    }
    void prefetch_small(uintptr_t address) const noexcept { small_.prefetch(address); }

    // Every row with its final values: peak_* are the values at the high-watermark.
    [[nodiscard]] std::vector<StatsRow> stats() const;
    // One of them (index < row_count()), for writers that must not copy them all.
    [[nodiscard]] StatsRow stats_row(size_t index) const noexcept;
    // The non-empty cells of the size histogram, and the allocators that allocated.
    [[nodiscard]] std::vector<SizeCell> sizes() const;
    [[nodiscard]] std::vector<AllocatorUse> allocators() const;
    [[nodiscard]] int64_t heap() const noexcept { return heap_; }
    [[nodiscard]] int64_t peak() const noexcept { return peak_; }
    // Index of the event after which the peak was reached (0: none yet), and its tick count.
    [[nodiscard]] uint64_t peak_event() const noexcept { return peak_event_; }
    [[nodiscard]] int64_t peak_ticks() const noexcept { return peak_ticks_; }
    [[nodiscard]] int64_t alloc_count() const noexcept { return alloc_count_; }
    [[nodiscard]] int64_t alloc_bytes() const noexcept { return alloc_bytes_; }
    [[nodiscard]] size_t row_count() const noexcept { return rows_.size(); }
    // The heap for a reader that does not hold the lock (the sampler).
    [[nodiscard]] int64_t heap_now() const noexcept {
        return heap_now_.load(std::memory_order_relaxed);
    }

    void clear();

  private:
    // The blocks of the hash table (not SmallBlocks::fits), out of line: their probes need
    // registers that the small blocks' inline path would otherwise save and restore at every
    // event (measured: ~20 instructions a free).
    __attribute__((noinline)) bool insert_large(uintptr_t address, uint64_t size, uint32_t row);
    __attribute__((noinline)) int64_t free_large(uintptr_t address, bool count_temporary,
                                                 TemporaryWindow* window);

    // A freed block of the row: its live numbers, and whether it was a temporary.
    MEMLENS_ALWAYS_INLINE int64_t freed(uint32_t row, int64_t size, uintptr_t address,
                                        bool count_temporary, TemporaryWindow* window) {
        Row& r = rows_[row];
        change_live(r, -1, -size);
        if (window != nullptr && window->take(address) && count_temporary) {
            r.temp_count += 1;
            r.temp_bytes += size;
        }
        return size;
    }

    // One event changing a row's live numbers: the O(1) high-watermark of DESIGN.md.
    MEMLENS_ALWAYS_INLINE void change_live(uint32_t row_index, int64_t count, int64_t bytes) {
        change_live(rows_[row_index], count, bytes);
    }
    MEMLENS_ALWAYS_INLINE void change_live(Row& row, int64_t count, int64_t bytes) {
        uint64_t event = ++event_;
        if (row.touched <= peak_event_) {
            // The row has not moved since the peak: its value at the peak is its value now.
            row.at_peak_count = row.live_count;
            row.at_peak_bytes = row.live_bytes;
        }
        row.live_count += count;
        row.live_bytes += bytes;
        row.touched = event;
        heap_ += bytes;
        heap_now_.store(heap_, std::memory_order_relaxed);
        if (heap_ > peak_) {
            peak_ = heap_;
            peak_event_ = event;
            peak_ticks_ = ticks();
        }
    }

    MEMLENS_ALWAYS_INLINE void count_alloc(uint32_t row, uint64_t size, Allocator allocator) {
        auto bytes = static_cast<int64_t>(size);
        Row& r = rows_[row];
        r.alloc_count += 1;
        r.alloc_bytes += bytes;
        alloc_count_ += 1;
        alloc_bytes_ += bytes;
        SizeCounts::Cell& cell = sizes_.buckets[r.domain][SizeCounts::bucket(size)];
        cell.count += 1;
        cell.bytes += bytes;
        SizeCounts::Cell& by_allocator = sizes_.allocators[allocator];
        by_allocator.count += 1;
        by_allocator.bytes += bytes;
        change_live(r, 1, bytes);
    }

    Chunked<Row> rows_;             // chunked: growing never copies (chunked.h)
    using RowIds = IndexTable<24>;  // a row index fits in a LiveBlock's 24 bits anyway
    RowIds row_ids_;                // rows by (stack, thread, domain)
    static_assert(kMaxRows - 1 <= RowIds::kMaxIndex, "every row index fits in a slot");
    SmallBlocks small_;        // live blocks of up to 512 bytes
    FlatMap<LiveBlock> live_;  // the other live blocks, key: address
    std::map<uintptr_t, MmapRegion> mmaps_;
    int64_t heap_ = 0;
    int64_t peak_ = 0;
    uint64_t event_ = 0;
    uint64_t peak_event_ = 0;
    int64_t peak_ticks_ = 0;
    int64_t alloc_count_ = 0;
    int64_t alloc_bytes_ = 0;
    SizeCounts sizes_{};
    std::atomic<int64_t> heap_now_{0};
};

}  // namespace memlens
