// Aggregation's colder half: new rows, mmap regions, the final values. The hot calls are inline
// in aggregate.h.
#include "aggregate.h"

namespace memlens {

namespace {

uint64_t row_key(int32_t stack, uint32_t thread, uint32_t domain) {
    return (static_cast<uint64_t>(stack + 2) << 24) |
           (static_cast<uint64_t>(thread & 0x3fffff) << 2) | domain;
}

}  // namespace

uint32_t Aggregate::row(int32_t stack, uint32_t thread, Domain domain) {
    if (rows_.size() >= kMaxRows) {
        return kNoRow;
    }
    RowIds::Place place = row_ids_.find(row_key(stack, thread, domain), [this](uint32_t i) {
        const Row& r = rows_[i];
        return row_key(r.stack, r.thread, r.domain);
    });
    if (place.slot == nullptr) {
        return kNoRow;
    }
    if (!place.found()) {
        auto index = static_cast<uint32_t>(rows_.size());
        Row fresh{};
        fresh.stack = stack;
        fresh.thread = thread;
        fresh.domain = domain;
        rows_.push_back(fresh);
        row_ids_.fill(place, index);
    }
    return place.index();
}

bool Aggregate::insert_large(uintptr_t address, uint64_t size, uint32_t row) {
    SmallBlocks::Block replaced{};
    if (small_.erase(address, &replaced)) {
        change_live(replaced.row, -1, -static_cast<int64_t>(replaced.size));
    }
    bool inserted = false;
    LiveBlock* block = live_.insert(address, &inserted);
    if (block == nullptr) {
        return false;
    }
    if (!inserted) {
        change_live(block->row, -1, -static_cast<int64_t>(block->size));
    }
    block->size = std::min<uint64_t>(size, (uint64_t{1} << 40) - 1);
    block->row = row;
    return true;
}

int64_t Aggregate::free_large(uintptr_t address, bool count_temporary, TemporaryWindow* window) {
    LiveBlock block{};
    if (!live_.erase(address, &block)) {
        return 0;
    }
    return freed(block.row, static_cast<int64_t>(block.size), address, count_temporary, window);
}

void Aggregate::mmap(uintptr_t start, uint64_t length, uint64_t requested, uint32_t row,
                     Allocator allocator, TemporaryWindow* window) {
    munmap(start, start + length);  // MAP_FIXED over an older mapping replaces it
    requested = std::min(requested, length);
    mmaps_[start] = {length, requested, row, true};
    count_alloc(row, requested, allocator);
    window->allocated(start);
}

void Aggregate::munmap(uintptr_t start, uintptr_t end) {
    auto it = mmaps_.upper_bound(start);
    if (it != mmaps_.begin()) {
        --it;
    }
    while (it != mmaps_.end() && it->first < end) {
        uintptr_t region_start = it->first;
        uintptr_t region_end = region_start + it->second.length;
        if (region_end <= start) {
            ++it;
            continue;
        }
        MmapRegion region = it->second;
        it = mmaps_.erase(it);
        uintptr_t cut_start = std::max(start, region_start);
        uintptr_t cut_end = std::min(end, region_end);
        uintptr_t counted_end = region_start + region.counted;  // charged bytes end here
        auto charged = [counted_end](uintptr_t from, uintptr_t to) -> uint64_t {
            return to > from && counted_end > from ? std::min(to, counted_end) - from : 0;
        };
        bool count_moves = region.holds_count;
        if (region_start < cut_start) {
            mmaps_[region_start] = {cut_start - region_start, charged(region_start, cut_start),
                                    region.row, count_moves};
            count_moves = false;
        }
        if (cut_end < region_end) {
            mmaps_[cut_end] = {region_end - cut_end, charged(cut_end, region_end), region.row,
                               count_moves};
            count_moves = false;
        }
        int64_t count = (region.holds_count && count_moves) ? -1 : 0;
        change_live(region.row, count, -static_cast<int64_t>(charged(cut_start, cut_end)));
        it = mmaps_.lower_bound(cut_end);
    }
}

StatsRow Aggregate::stats_row(size_t index) const noexcept {
    const Row& r = rows_[index];
    bool moved_after_peak = r.touched > peak_event_;
    return {r.stack,
            r.thread,
            r.domain,
            r.alloc_count,
            r.alloc_bytes,
            moved_after_peak ? r.at_peak_count : r.live_count,
            moved_after_peak ? r.at_peak_bytes : r.live_bytes,
            r.live_count,
            r.live_bytes,
            r.temp_count,
            r.temp_bytes};
}

std::vector<StatsRow> Aggregate::stats() const {
    std::vector<StatsRow> out;
    out.reserve(rows_.size());
    for (size_t i = 0; i < rows_.size(); ++i) {
        out.push_back(stats_row(i));
    }
    return out;
}

std::vector<SizeCell> Aggregate::sizes() const {
    std::vector<SizeCell> out;
    for (int domain = 0; domain < kDomainCount; ++domain) {
        for (int bucket = 0; bucket < SizeCounts::kBuckets; ++bucket) {
            const SizeCounts::Cell& cell = sizes_.buckets[domain][bucket];
            if (cell.count != 0) {
                out.push_back({static_cast<uint32_t>(domain), bucket - 1, cell.count, cell.bytes});
            }
        }
    }
    return out;
}

std::vector<AllocatorUse> Aggregate::allocators() const {
    std::vector<AllocatorUse> out;
    for (int allocator = 0; allocator < kAllocatorCount; ++allocator) {
        const SizeCounts::Cell& cell = sizes_.allocators[allocator];
        if (cell.count != 0) {
            out.push_back({kAllocatorNames[allocator], cell.count, cell.bytes});
        }
    }
    return out;
}

void Aggregate::clear() {
    rows_.clear();
    row_ids_.clear();
    small_.clear();
    live_.clear();
    mmaps_.clear();
    heap_ = peak_ = peak_ticks_ = alloc_count_ = alloc_bytes_ = 0;
    event_ = peak_event_ = 0;
    sizes_ = SizeCounts{};
    heap_now_.store(0);
}

}  // namespace memlens
