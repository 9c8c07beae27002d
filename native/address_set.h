// A set of 8-aligned addresses: a bitmap per 4 KiB page (64 B, a bit per word), found through a
// hash of pages. For addresses that crowd into few pages (a heap's objects and blocks), the page
// table and the bitmaps stay in the cache, where a hash of the addresses themselves (16 B slots,
// at most half full) costs ~32-64 B a member and a cache miss at nearly every lookup: the exit
// snapshot's mark looks up every word it scans (docs/design.md, "Performance budgets").
#pragma once

#include <cstdint>

#include "chunked.h"
#include "flat_map.h"

namespace memlens {

class AddressSet {
  public:
    // Adds address (8-aligned); false when it was there already or memory ran out.
    bool insert(uintptr_t address) {
        bool inserted = false;
        uint32_t* page = pages_.insert(page_key(address), &inserted);
        if (page == nullptr) {
            return false;
        }
        if (inserted) {
            *page = static_cast<uint32_t>(bitmaps_.size());
            bitmaps_.push_back(Bitmap{});
        }
        uint64_t& bits = bitmaps_[*page].words[word_in_page(address) >> 6];
        uint64_t bit = uint64_t{1} << (word_in_page(address) & 63);
        bool fresh = (bits & bit) == 0;
        bits |= bit;
        return fresh;
    }

    [[nodiscard]] bool contains(uintptr_t address) {
        const uint32_t* page = pages_.find(page_key(address));
        return page != nullptr &&
               (bitmaps_[*page].words[word_in_page(address) >> 6] >> (word_in_page(address) & 63) &
                1) != 0;
    }

  private:
    struct Bitmap {
        uint64_t words[8];  // 512 bits: one per 8-byte word of a 4 KiB page
    };

    static uint64_t page_key(uintptr_t address) { return (address >> 12) + 1; }  // 0: empty
    static uint32_t word_in_page(uintptr_t address) { return (address >> 3) & 511; }

    FlatMap<uint32_t> pages_;  // page key -> index in bitmaps_
    Chunked<Bitmap, 10> bitmaps_;
};

}  // namespace memlens
