// The live small blocks (up to 512 bytes: every pymalloc object, most small mallocs), found by
// address in a radix map of 4-byte slots, one slot per 16 bytes of address space.
//
// Why not the hash table: a hash scatters neighbouring blocks over the whole table, so with a
// million live objects nearly every probe is a cache and TLB miss. Here a block's slot sits next
// to the slots of the blocks allocated around it (pymalloc hands out a pool's blocks in order),
// so the slots of a burst of allocations share cache lines, as the blocks themselves do.
// Bigger or oddly aligned blocks stay in the hash table. Memory comes straight from libc: this
// module's own calls are never patched. Not thread-safe: the tracker's lock covers it.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <sys/mman.h>
#include <vector>

#include "flat_map.h"

namespace memlens {

class SmallBlocks {
  public:
    static constexpr uint64_t kMaxSize = 512;
    static constexpr uint32_t kMaxRow = (1u << 23) - 2;  // the slot keeps row + 1 in 23 bits

    struct Block {
        uint32_t row;
        uint32_t size;
    };

    SmallBlocks() = default;
    SmallBlocks(const SmallBlocks&) = delete;
    SmallBlocks& operator=(const SmallBlocks&) = delete;

    // Whether a block can be kept here (else it goes to the hash table).
    static bool fits(uintptr_t address, uint64_t size, uint32_t row) {
        return size - 1 < kMaxSize && (address & 15) == 0 && address < kAddressLimit &&
               row <= kMaxRow;
    }

    // Records a block that fits(); a block already recorded at that address (freed where the
    // hooks could not see it) is replaced and returned in *replaced. False when out of memory.
    MEMLENS_ALWAYS_INLINE bool insert(uintptr_t address, uint32_t size, uint32_t row,
                                      Block* replaced) {
        uint32_t* slot = slot_for(address);
        if (slot == nullptr) {
            return false;
        }
        *replaced = decode(*slot);
        *slot = ((row + 1) << kSizeBits) | (size - 1);
        return true;
    }

    // Removes the block at address, copying it out; false if there is none.
    MEMLENS_ALWAYS_INLINE bool erase(uintptr_t address, Block* out) {
        Leaf* leaf = leaf_of(address);
        if (leaf == nullptr) {
            return false;
        }
        uint32_t& slot = leaf->slots[index_in_leaf(address)];
        if (slot == 0) {
            return false;
        }
        *out = decode(slot);
        slot = 0;
        return true;
    }

    // The block recorded at address, if any (an object snapshot's lookup).
    [[nodiscard]] bool find(uintptr_t address, Block* out) const {
        Leaf* leaf = leaf_of(address);
        if (leaf == nullptr || leaf->slots[index_in_leaf(address)] == 0) {
            return false;
        }
        *out = decode(leaf->slots[index_in_leaf(address)]);
        return true;
    }

    // Starts loading address's slot into the cache, so that a free can overlap the miss with
    // other work. Read without the lock: the upper levels are never freed, a stale leaf only
    // wastes the prefetch (which never faults).
    void prefetch(uintptr_t address) const {
        if (Leaf* leaf = leaf_of(address)) {
            prefetch_for_write(&leaf->slots[index_in_leaf(address)]);
        }
    }

    // Forgets every block. The upper levels stay (their pointers may still be read by a
    // concurrent lookup that lost the race with stop(); the leaves are freed).
    void clear() {
        for (Leaf* leaf : leaves_) {
            std::free(leaf);
        }
        leaves_.clear();
        if (root_ != nullptr) {
            for (size_t i = 0; i < kRootSize; ++i) {
                if ((*root_)[i] != nullptr) {
                    // Zero again, and the pages go back: a racing read sees null leaves.
                    madvise((*root_)[i], sizeof(Mid), MADV_DONTNEED);
                }
            }
        }
    }

  private:
    // 47-bit user addresses: root by bits 32-46, mid by bits kLeafShift-31, leaf by bits
    // 4-(kLeafShift - 1).
    static constexpr uintptr_t kAddressLimit = uintptr_t{1} << 47;
    static constexpr int kLeafShift = 12;
    static constexpr size_t kRootSize = size_t{1} << 15;
    static constexpr size_t kMidSize = size_t{1} << (32 - kLeafShift);
    static constexpr size_t kLeafSize = size_t{1} << (kLeafShift - 4);
    static constexpr uint32_t kSizeBits = 9;

    // A leaf covers 4 KiB of address space (a page): with 64 KiB leaves, the slots of all that
    // shares 64 KiB with a small block (big blocks, unused pools) were paid for too; pandas's
    // bench went from +30 to +21 MiB over the unprofiled run, sympy's from +64 to +60.
    struct Leaf {
        uint32_t slots[kLeafSize];  // 1 KiB for 4 KiB of address space
    };
    struct Mid {
        Leaf* leaves[kMidSize];  // 8 MiB for 4 GiB of address space, mapped: paid where used
    };

    MEMLENS_ALWAYS_INLINE static Block decode(uint32_t slot) {
        if (slot == 0) {
            return {0, 0};
        }
        return {(slot >> kSizeBits) - 1, (slot & ((1u << kSizeBits) - 1)) + 1};
    }

    // The upper levels are mapped lazily zeroed: only the pages that hold leaf pointers cost
    // memory, and a page is written (a copy of the zero page, with a TLB shootdown) only
    // when its first leaf is made.
    template <class T>
    static T* mapped() {
        void* p =
            mmap(nullptr, sizeof(T), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        return p == MAP_FAILED ? nullptr : static_cast<T*>(p);
    }

    // Leaves are zeroed by writing them (malloc + memset, not calloc): a read of a lazily
    // zeroed page maps the shared zero page, and the first write then copies it with a TLB
    // shootdown on every thread; a leaf's slots are written at every allocation.
    template <class T>
    static T* zeroed() {
        auto* p = static_cast<T*>(std::malloc(sizeof(T)));
        if (p != nullptr) {
            std::memset(static_cast<void*>(p), 0, sizeof(T));
        }
        return p;
    }

    static size_t index_in_leaf(uintptr_t address) { return (address >> 4) & (kLeafSize - 1); }

    // The leaf holding address's slot, if there is one (no block was ever recorded near it: none).
    Leaf* leaf_of(uintptr_t address) const {
        Mid*(*root)[kRootSize] = root_;
        if (root == nullptr || (address & 15) != 0 || address >= kAddressLimit) {
            return nullptr;
        }
        Mid* mid = (*root)[address >> 32];
        return mid == nullptr ? nullptr : mid->leaves[(address >> kLeafShift) & (kMidSize - 1)];
    }

    // Address's slot, making the levels down to it as needed; nullptr when out of memory.
    MEMLENS_ALWAYS_INLINE uint32_t* slot_for(uintptr_t address) {
        if (root_ != nullptr) {
            if (Mid* mid = (*root_)[address >> 32]) {
                if (Leaf* leaf = mid->leaves[(address >> kLeafShift) & (kMidSize - 1)]) {
                    return &leaf->slots[index_in_leaf(address)];
                }
            }
        }
        return new_slot(address);
    }

    // slot_for's levels that do not exist yet (out of line: once per 4 KiB of address space).
    __attribute__((noinline)) uint32_t* new_slot(uintptr_t address) {
        if (root_ == nullptr && (root_ = mapped<Mid* [kRootSize]>()) == nullptr) {
            return nullptr;
        }
        Mid*& mid = (*root_)[address >> 32];
        if (mid == nullptr && (mid = mapped<Mid>()) == nullptr) {
            return nullptr;
        }
        Leaf*& leaf = mid->leaves[(address >> kLeafShift) & (kMidSize - 1)];
        if (leaf == nullptr) {
            leaves_.push_back(nullptr);  // may throw: before anything points at the new leaf
            if ((leaf = zeroed<Leaf>()) == nullptr) {
                leaves_.pop_back();
                return nullptr;
            }
            leaves_.back() = leaf;
        }
        return &leaf->slots[index_in_leaf(address)];
    }

    Mid* (*root_)[kRootSize] = nullptr;
    MappedVector<Leaf*> leaves_;
};

}  // namespace memlens
