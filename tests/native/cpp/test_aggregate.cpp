// C++ tests of the native core without Python: aggregation, the live tables and the exact O(1)
// high-watermark of DESIGN.md, driven with known sequences of events (make test-native-cpp).
#include <cstdint>
#include <cstdio>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "aggregate.h"

namespace {

int g_failures = 0;
int g_checks = 0;

// Plain asserts vanish under NDEBUG (Release): this one always checks, and goes on.
#define CHECK_EQ(actual, expected)                                                          \
    do {                                                                                    \
        ++g_checks;                                                                         \
        auto actual_value = (actual);                                                       \
        auto expected_value = (expected);                                                   \
        if (!(actual_value == expected_value)) {                                            \
            ++g_failures;                                                                   \
            std::fprintf(stderr, "%s:%d: %s == %lld, expected %lld\n", __FILE__, __LINE__, \
                         #actual, static_cast<long long>(actual_value),                     \
                         static_cast<long long>(expected_value));                           \
        }                                                                                   \
    } while (0)

using memlens::Aggregate;
using memlens::StatsRow;
using memlens::TemporaryWindow;

// Fake addresses: the tables never touch the memory. Small ones are 16-aligned (the radix map).
constexpr uintptr_t kSmall = 0x10000;
constexpr uintptr_t kBig = 0x7f0000000000;

StatsRow row_stats(const Aggregate& aggregate, uint32_t row) { return aggregate.stats().at(row); }

void test_peak_and_values_at_peak() {
    Aggregate a;
    TemporaryWindow thread;
    uint32_t r1 = a.row(0, 0, memlens::kMallocDomain);
    uint32_t r2 = a.row(1, 0, memlens::kMallocDomain);
    uint32_t r3 = a.row(2, 1, memlens::kPythonDomain);
    CHECK_EQ(a.row(1, 0, memlens::kMallocDomain), r2);  // one row per (stack, thread, domain)
    CHECK_EQ(a.row(1, 0, memlens::kPythonDomain) != r2, true);
    a.alloc(kSmall, 100, r1, memlens::kMalloc, &thread);          // heap 100
    a.alloc(kSmall + 0x100, 200, r2, memlens::kMalloc, &thread);  // 300
    CHECK_EQ(a.free(kSmall, true, &thread), 100);                 // 200
    a.alloc(kBig, 1000, r3, memlens::kMalloc, &thread);           // 1200: the peak
    CHECK_EQ(a.free(kSmall + 0x100, true, &thread), 200);         // 1000
    a.alloc(kSmall + 0x200, 50, r1, memlens::kMalloc, &thread);   // 1050
    CHECK_EQ(a.peak(), 1200);
    CHECK_EQ(a.heap(), 1050);
    CHECK_EQ(row_stats(a, r1).peak_bytes, 0);  // at the peak r1 held nothing
    CHECK_EQ(row_stats(a, r2).peak_bytes, 200);
    CHECK_EQ(row_stats(a, r3).peak_bytes, 1000);
    CHECK_EQ(row_stats(a, r2).peak_count, 1);
    CHECK_EQ(row_stats(a, r1).leak_bytes, 50);
    CHECK_EQ(row_stats(a, r2).leak_bytes, 0);
    CHECK_EQ(row_stats(a, r1).alloc_count, 2);
    CHECK_EQ(row_stats(a, r1).alloc_bytes, 150);
    // A higher peak later: every row's value at the peak is taken anew.
    a.alloc(kBig + 0x10000, 4000, r2, memlens::kMalloc, &thread);  // 5050
    CHECK_EQ(a.peak(), 5050);
    CHECK_EQ(row_stats(a, r1).peak_bytes, 50);
    CHECK_EQ(row_stats(a, r2).peak_bytes, 4000);
    CHECK_EQ(row_stats(a, r3).peak_bytes, 1000);
    CHECK_EQ(a.alloc_count(), 5);
    CHECK_EQ(a.alloc_bytes(), 5350);
}

void test_temporaries_and_realloc() {
    Aggregate a;
    TemporaryWindow thread(0);  // threshold 0: freed before its thread allocates again
    TemporaryWindow other(0);
    uint32_t row = a.row(0, 0, memlens::kMallocDomain);
    // Freed before its thread allocates again: temporary.
    a.alloc(kSmall, 64, row, memlens::kMalloc, &thread);
    a.free(kSmall, true, &thread);
    // Another allocation came first: not temporary.
    a.alloc(kSmall, 64, row, memlens::kMalloc, &thread);
    a.alloc(kSmall + 0x40, 32, row, memlens::kMalloc, &thread);
    a.free(kSmall, true, &thread);
    // Another thread's allocation in between does not matter.
    a.alloc(kSmall + 0x80, 16, row, memlens::kMalloc, &thread);
    a.alloc(kSmall + 0xc0, 16, row, memlens::kMalloc, &other);
    a.free(kSmall + 0x80, true, &thread);
    // realloc = a free that is never temporary, then the new block.
    a.alloc(kBig, 1000, row, memlens::kMalloc, &thread);
    CHECK_EQ(a.free(kBig, false, &thread), 1000);
    a.alloc(kBig + 0x1000, 3000, row, memlens::kMalloc, &thread);
    StatsRow stats = row_stats(a, row);
    CHECK_EQ(stats.temp_count, 2);
    CHECK_EQ(stats.temp_bytes, 80);
    CHECK_EQ(stats.leak_bytes, 32 + 16 + 3000);
    CHECK_EQ(stats.leak_count, 3);
    CHECK_EQ(a.peak(), 32 + 16 + 3000);
    // Frees of blocks it never saw are not its business.
    CHECK_EQ(a.free(kSmall + 0x1000, true, &thread), 0);
    CHECK_EQ(a.free(kBig + 0x5000, true, nullptr), 0);
    CHECK_EQ(a.heap(), 32 + 16 + 3000);
}

void test_a_block_freed_behind_its_back_is_replaced() {
    Aggregate a;
    TemporaryWindow thread;
    uint32_t r1 = a.row(0, 0, memlens::kMallocDomain);
    uint32_t r2 = a.row(1, 0, memlens::kMallocDomain);
    a.alloc(kSmall, 100, r1, memlens::kMalloc, &thread);
    a.alloc(kSmall, 40, r2, memlens::kMalloc, &thread);  // same address: the first block is gone
    a.alloc(kBig, 5000, r1, memlens::kMalloc, &thread);
    a.alloc(kBig, 7000, r2, memlens::kMalloc, &thread);
    CHECK_EQ(a.heap(), 7040);
    CHECK_EQ(row_stats(a, r1).leak_bytes, 0);
    CHECK_EQ(row_stats(a, r2).leak_bytes, 7040);
    // A big block where a small one was.
    a.alloc(kSmall, 4096, r1, memlens::kMalloc, &thread);
    CHECK_EQ(a.heap(), 7000 + 4096);
    CHECK_EQ(row_stats(a, r2).leak_count, 1);
}

void test_mmap_regions_split_and_count_once() {
    Aggregate a;
    TemporaryWindow thread;
    uint32_t row = a.row(3, 0, memlens::kMmapDomain);
    constexpr uintptr_t kMap = 0x7e0000000000;
    a.mmap(kMap, 3 * 4096, 3 * 4096, row, memlens::kMmap, &thread);
    a.munmap(kMap + 4096, kMap + 2 * 4096);  // the middle page: two regions, one allocation
    CHECK_EQ(a.heap(), 2 * 4096);
    CHECK_EQ(row_stats(a, row).leak_count, 1);
    // The count stays with the first piece (a piece without it can go first).
    a.munmap(kMap + 2 * 4096, kMap + 3 * 4096);
    CHECK_EQ(row_stats(a, row).leak_count, 1);
    a.munmap(kMap, kMap + 4096);
    CHECK_EQ(row_stats(a, row).leak_count, 0);
    CHECK_EQ(a.heap(), 0);
    CHECK_EQ(a.peak(), 3 * 4096);
    CHECK_EQ(a.has_mappings(), false);
    // A mapping over an older one replaces it.
    a.mmap(kMap, 8192, 8192, row, memlens::kMmap, &thread);
    a.mmap(kMap + 4096, 4096, 4096, row, memlens::kMmap, &thread);
    CHECK_EQ(a.heap(), 8192);
    CHECK_EQ(row_stats(a, row).alloc_count, 3);
}

// Threshold N (Memray's): freed within N allocations of its thread.
void test_temporary_threshold() {
    Aggregate a;
    TemporaryWindow thread;  // the default, 1: a grown vector's old buffer is temporary
    uint32_t row = a.row(5, 0, memlens::kMallocDomain);
    a.alloc(kSmall, 64, row, memlens::kMalloc, &thread);
    a.alloc(kSmall + 0x40, 128, row, memlens::kMalloc, &thread);  // the new buffer
    a.free(kSmall, true, &thread);  // the old one: within 1 allocation
    a.alloc(kSmall + 0x100, 16, row, memlens::kMalloc, &thread);
    a.alloc(kSmall + 0x140, 16, row, memlens::kMalloc, &thread);
    a.free(kSmall + 0x40, true, &thread);  // 2 allocations later: not temporary
    CHECK_EQ(row_stats(a, row).temp_count, 1);
    CHECK_EQ(row_stats(a, row).temp_bytes, 64);
    TemporaryWindow wide(3);
    uint32_t wide_row = a.row(6, 0, memlens::kMallocDomain);
    a.alloc(kBig, 1000, wide_row, memlens::kMalloc, &wide);
    for (int i = 1; i <= 3; ++i) {
        a.alloc(kBig + 0x1000 * static_cast<uintptr_t>(i), 8, wide_row, memlens::kMalloc, &wide);
    }
    a.free(kBig, true, &wide);  // 3 allocations later: within 3
    CHECK_EQ(row_stats(a, wide_row).temp_count, 1);
    CHECK_EQ(TemporaryWindow(1000).size, TemporaryWindow::kMaxThreshold + 1);  // clamped
}

// A mapping is charged the bytes asked for, not its pages; unmapping takes back only those.
void test_mmap_charges_the_requested_length() {
    Aggregate a;
    TemporaryWindow thread;
    uint32_t row = a.row(4, 0, memlens::kMmapDomain);
    constexpr uintptr_t kMap = 0x7e0000000000;
    a.mmap(kMap, 4096, 2048, row, memlens::kMmap, &thread);
    CHECK_EQ(a.heap(), 2048);
    a.munmap(kMap, kMap + 4096);
    CHECK_EQ(a.heap(), 0);
    // 2.5 pages asked for: unmapping the first page takes 4,096, the rest takes the 6,144 left.
    a.mmap(kMap, 3 * 4096, 10240, row, memlens::kMmap, &thread);
    a.munmap(kMap, kMap + 4096);
    CHECK_EQ(a.heap(), 10240 - 4096);
    a.munmap(kMap + 2 * 4096, kMap + 3 * 4096);  // the last page holds 2,048 of them
    CHECK_EQ(a.heap(), 4096);
    a.munmap(kMap + 4096, kMap + 2 * 4096);
    CHECK_EQ(a.heap(), 0);
    CHECK_EQ(a.peak(), 10240);
    CHECK_EQ(row_stats(a, row).alloc_bytes, 2048 + 10240);
}

// Random events on a few stacks against a model that copies every row at each new peak.
void test_high_watermark_matches_a_brute_force_model() {
    std::mt19937_64 random(20261202);
    for (int round = 0; round < 20; ++round) {
        Aggregate a;
        TemporaryWindow thread;
        constexpr int kStacks = 7;
        std::vector<uint32_t> rows;
        for (int s = 0; s < kStacks; ++s) {
            rows.push_back(a.row(s, static_cast<uint32_t>(s % 2), memlens::kMallocDomain));
        }
        std::map<uintptr_t, std::pair<int, int64_t>> live;  // address -> (stack, size)
        std::vector<int64_t> live_bytes(kStacks, 0), at_peak(kStacks, 0);
        int64_t heap = 0, peak = 0;
        uintptr_t next = kSmall;
        for (int event = 0; event < 5000; ++event) {
            if (live.empty() || random() % 100 < 55) {
                int stack = static_cast<int>(random() % kStacks);
                int64_t size = random() % 3 == 0 ? 1 + random() % 512 : 513 + random() % 9000;
                uintptr_t address = next;
                next += 0x10 * (1 + size / 16 + 1);
                a.alloc(address, static_cast<uint64_t>(size), rows[stack], memlens::kMalloc,
                        &thread);
                live[address] = {stack, size};
                live_bytes[stack] += size;
                heap += size;
            } else {
                auto it = live.begin();
                std::advance(it, static_cast<long>(random() % live.size()));
                CHECK_EQ(a.free(it->first, true, &thread), it->second.second);
                live_bytes[it->second.first] -= it->second.second;
                heap -= it->second.second;
                live.erase(it);
            }
            if (heap > peak) {
                peak = heap;
                at_peak = live_bytes;
            }
        }
        CHECK_EQ(a.peak(), peak);
        CHECK_EQ(a.heap(), heap);
        std::vector<StatsRow> stats = a.stats();
        for (int s = 0; s < kStacks; ++s) {
            CHECK_EQ(stats[rows[s]].peak_bytes, at_peak[s]);
            CHECK_EQ(stats[rows[s]].leak_bytes, live_bytes[s]);
        }
    }
}

// Sizes are counted exactly per (domain, bucket) and per allocator, mmaps by requested bytes.
void test_sizes_and_allocators_are_counted_exactly() {
    Aggregate a;
    TemporaryWindow thread;
    uint32_t native = a.row(0, 0, memlens::kMallocDomain);
    uint32_t python = a.row(0, 0, memlens::kPythonDomain);
    uint32_t mapped = a.row(0, 0, memlens::kMmapDomain);
    a.alloc(kSmall, 0, native, memlens::kMalloc, &thread);                // bucket -1
    a.alloc(kSmall + 0x10, 1, native, memlens::kMalloc, &thread);         // [1, 2)
    a.alloc(kSmall + 0x20, 64, native, memlens::kCalloc, &thread);        // [64, 128)
    a.alloc(kSmall + 0x80, 127, native, memlens::kRealloc, &thread);      // [64, 128)
    a.alloc(kSmall + 0x100, 128, python, memlens::kPyObject, &thread);    // [128, 256)
    a.alloc(kBig, uint64_t{1} << 40, native, memlens::kValloc, &thread);  // the largest bucket
    a.mmap(kBig + (uint64_t{1} << 41), 8192, 5000, mapped, memlens::kMmap, &thread);
    std::vector<memlens::SizeCell> sizes = a.sizes();
    CHECK_EQ(sizes.size(), 6u);
    struct Expected {
        uint32_t domain;
        int32_t bucket_log2;
        int64_t count, bytes;
    };
    const Expected expected[] = {{memlens::kPythonDomain, 7, 1, 128},
                                 {memlens::kMallocDomain, -1, 1, 0},
                                 {memlens::kMallocDomain, 0, 1, 1},
                                 {memlens::kMallocDomain, 6, 2, 191},
                                 {memlens::kMallocDomain, 40, 1, int64_t{1} << 40},
                                 {memlens::kMmapDomain, 12, 1, 5000}};
    for (size_t i = 0; i < sizes.size() && i < 6; ++i) {
        CHECK_EQ(sizes[i].domain, expected[i].domain);
        CHECK_EQ(sizes[i].bucket_log2, expected[i].bucket_log2);
        CHECK_EQ(sizes[i].count, expected[i].count);
        CHECK_EQ(sizes[i].bytes, expected[i].bytes);
    }
    std::vector<memlens::AllocatorUse> used = a.allocators();
    std::map<std::string, std::pair<int64_t, int64_t>> by_name;
    for (const memlens::AllocatorUse& u : used) by_name[u.name] = {u.count, u.bytes};
    CHECK_EQ(used.size(), 6u);
    CHECK_EQ(by_name["malloc"].first, 2);
    CHECK_EQ(by_name["malloc"].second, 1);
    CHECK_EQ(by_name["calloc"].second, 64);
    CHECK_EQ(by_name["realloc"].second, 127);
    CHECK_EQ(by_name["pyobject"].second, 128);
    CHECK_EQ(by_name["valloc"].second, int64_t{1} << 40);
    CHECK_EQ(by_name["mmap"].second, 5000);
    a.clear();
    CHECK_EQ(a.sizes().size(), 0u);
    CHECK_EQ(a.allocators().size(), 0u);
}

void test_clear_forgets_everything() {
    Aggregate a;
    TemporaryWindow thread;
    a.alloc(kSmall, 10, a.row(0, 0, memlens::kMallocDomain), memlens::kMalloc, &thread);
    a.clear();
    CHECK_EQ(a.heap(), 0);
    CHECK_EQ(a.peak(), 0);
    CHECK_EQ(a.row_count(), 0u);
    CHECK_EQ(a.free(kSmall, true, &thread), 0);
}

// Rows live in chunks of 4,096: rows on both sides of chunk boundaries keep their own values.
void test_rows_across_chunks() {
    Aggregate a;
    TemporaryWindow thread;
    const int rows = 3 * 4096 + 5;
    for (int stack = 0; stack < rows; ++stack) {
        uint32_t row = a.row(stack, 0, memlens::kMallocDomain);
        CHECK_EQ(row, static_cast<uint32_t>(stack));
        a.alloc(kBig + 0x1000 * static_cast<uintptr_t>(stack), 1000 + stack, row, memlens::kMalloc,
                &thread);
    }
    CHECK_EQ(a.row_count(), static_cast<size_t>(rows));
    CHECK_EQ(a.row(4095, 0, memlens::kMallocDomain), 4095u);  // found again, not made anew
    for (int stack : {0, 4095, 4096, 8191, 8192, rows - 1}) {
        CHECK_EQ(row_stats(a, static_cast<uint32_t>(stack)).stack, stack);
        CHECK_EQ(row_stats(a, static_cast<uint32_t>(stack)).leak_bytes, 1000 + stack);
    }
    a.clear();
    CHECK_EQ(a.row_count(), 0u);
    CHECK_EQ(a.row(7, 0, memlens::kMallocDomain), 0u);
}

}  // namespace

int main() {
    test_peak_and_values_at_peak();
    test_temporaries_and_realloc();
    test_a_block_freed_behind_its_back_is_replaced();
    test_mmap_regions_split_and_count_once();
    test_mmap_charges_the_requested_length();
    test_temporary_threshold();
    test_high_watermark_matches_a_brute_force_model();
    test_sizes_and_allocators_are_counted_exactly();
    test_clear_forgets_everything();
    test_rows_across_chunks();
    std::printf("memlens native C++ tests: %d checks, %d failed\n", g_checks, g_failures);
    return g_failures == 0 ? 0 : 1;
}
