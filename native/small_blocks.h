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
#include <vector>

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
    bool insert(uintptr_t address, uint32_t size, uint32_t row, Block* replaced) {
        uint32_t* slot = slot_for(address);
        if (slot == nullptr) {
            return false;
        }
        *replaced = decode(*slot);
        *slot = ((row + 1) << kSizeBits) | (size - 1);
        return true;
    }

    // Removes the block at address, copying it out; false if there is none.
    bool erase(uintptr_t address, Block* out) {
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
            __builtin_prefetch(&leaf->slots[index_in_leaf(address)], 1);
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
                    std::memset(static_cast<void*>((*root_)[i]), 0, sizeof(Mid));
                }
            }
        }
    }

  private:
    // 47-bit user addresses: root by bits 32-46, mid by bits 16-31, leaf by bits 4-15.
    static constexpr uintptr_t kAddressLimit = uintptr_t{1} << 47;
    static constexpr size_t kRootSize = size_t{1} << 15;
    static constexpr size_t kMidSize = size_t{1} << 16;
    static constexpr size_t kLeafSize = size_t{1} << 12;
    static constexpr uint32_t kSizeBits = 9;

    struct Leaf {
        uint32_t slots[kLeafSize];  // 16 KiB for 64 KiB of address space
    };
    struct Mid {
        Leaf* leaves[kMidSize];  // 512 KiB for 4 GiB of address space
    };

    static Block decode(uint32_t slot) {
        if (slot == 0) {
            return {0, 0};
        }
        return {(slot >> kSizeBits) - 1, (slot & ((1u << kSizeBits) - 1)) + 1};
    }

    // Each level is zeroed by writing it (malloc + memset, not calloc): a read of a lazily
    // zeroed page maps the shared zero page, and the first write then copies it with a TLB
    // shootdown on every thread.
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
        return mid == nullptr ? nullptr : mid->leaves[(address >> 16) & (kMidSize - 1)];
    }

    // Address's slot, making the levels down to it as needed; nullptr when out of memory.
    uint32_t* slot_for(uintptr_t address) {
        if (root_ == nullptr && (root_ = zeroed<Mid* [kRootSize]>()) == nullptr) {
            return nullptr;
        }
        Mid*& mid = (*root_)[address >> 32];
        if (mid == nullptr && (mid = zeroed<Mid>()) == nullptr) {
            return nullptr;
        }
        Leaf*& leaf = mid->leaves[(address >> 16) & (kMidSize - 1)];
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
    std::vector<Leaf*> leaves_;
};

}  // namespace memlens
