// An open-addressing hash map from a non-zero 64-bit key to a trivially copyable value, for the
// hot path (no std::unordered_map: no node allocation per entry, one probe sequence in a flat
// array). Linear probing, backward-shift deletion (no tombstones). Memory comes straight from
// libc: this module's own calls are never patched.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <sys/mman.h>
#include <type_traits>

namespace memlens {

template <class Value>
class FlatMap {
    static_assert(std::is_trivially_copyable_v<Value>, "slots are moved with plain copies");

  public:
    FlatMap() = default;
    FlatMap(const FlatMap&) = delete;
    FlatMap& operator=(const FlatMap&) = delete;
    ~FlatMap() { std::free(slots_); }

    void clear() {
        std::free(slots_);
        slots_ = nullptr;
        mask_ = 0;
        size_ = 0;
    }

    [[nodiscard]] size_t size() const { return size_; }

    [[nodiscard]] Value* find(uint64_t key) {
        if (slots_ == nullptr) {
            return nullptr;
        }
        for (size_t i = hash(key) & mask_;; i = (i + 1) & mask_) {
            if (slots_[i].key == key) {
                return &slots_[i].value;
            }
            if (slots_[i].key == 0) {
                return nullptr;
            }
        }
    }

    // Starts loading key's slot into the cache: the caller has other work to overlap with the
    // miss. Read without the lock: a stale table only wastes the prefetch (which never faults).
    void prefetch(uint64_t key) const {
        Slot* slots = slots_;
        if (slots != nullptr) {
            __builtin_prefetch(&slots[hash(key) & mask_], 1);
        }
    }

    // The value for key, default-initialised if it was absent (*inserted tells which).
    // nullptr only when the table could not grow (out of memory).
    [[nodiscard]] Value* insert(uint64_t key, bool* inserted) {
        if ((size_ + 1) * 2 > mask_ + 1 && !grow()) {
            return nullptr;
        }
        size_t i = hash(key) & mask_;
        for (; slots_[i].key != 0; i = (i + 1) & mask_) {
            if (slots_[i].key == key) {
                *inserted = false;
                return &slots_[i].value;
            }
        }
        slots_[i].key = key;
        slots_[i].value = Value{};
        ++size_;
        *inserted = true;
        return &slots_[i].value;
    }

    // Removes key, copying its value out; false if it was absent.
    bool erase(uint64_t key, Value* out) {
        if (slots_ == nullptr) {
            return false;
        }
        size_t i = hash(key) & mask_;
        for (; slots_[i].key != key; i = (i + 1) & mask_) {
            if (slots_[i].key == 0) {
                return false;
            }
        }
        *out = slots_[i].value;
        // Shift later members of the probe run back so that lookups never stop early.
        for (size_t j = (i + 1) & mask_; slots_[j].key != 0; j = (j + 1) & mask_) {
            size_t home = hash(slots_[j].key) & mask_;
            bool stays = (i <= j) ? (i < home && home <= j) : (i < home || home <= j);
            if (!stays) {
                slots_[i] = slots_[j];
                i = j;
            }
        }
        slots_[i].key = 0;
        --size_;
        return true;
    }

  private:
    struct Slot {
        uint64_t key;
        Value value;
    };

    static size_t hash(uint64_t key) {
        key ^= key >> 33;
        key *= 0xff51afd7ed558ccdULL;
        key ^= key >> 33;
        return static_cast<size_t>(key);
    }

    bool grow() {
        size_t capacity = slots_ ? (mask_ + 1) * 2 : 1024;
        // malloc + memset, not calloc: calloc's lazily zeroed pages are first mapped to the
        // shared zero page by a probe's read, then copied on the first write, and that copy
        // needs a TLB shootdown (an IPI) on every page once the sampler thread exists; the
        // dict-heavy bench ran 10x slower. Writing every page now faults each in once.
        size_t bytes = capacity * sizeof(Slot);
        Slot* fresh = nullptr;
        if (bytes >= kHugePage) {
            // Probes land at random: on 4 KiB pages nearly every one is a TLB miss. Huge pages
            // (where the kernel allows them on request) make a big table several times faster.
            fresh = static_cast<Slot*>(std::aligned_alloc(kHugePage, round_up(bytes)));
            if (fresh != nullptr) {
                madvise(fresh, round_up(bytes), MADV_HUGEPAGE);
            }
        } else {
            fresh = static_cast<Slot*>(std::malloc(bytes));
        }
        if (fresh == nullptr) {
            return false;
        }
        std::memset(static_cast<void*>(fresh), 0, bytes);
        size_t mask = capacity - 1;
        for (size_t k = 0; slots_ && k <= mask_; ++k) {
            if (slots_[k].key != 0) {
                size_t i = hash(slots_[k].key) & mask;
                while (fresh[i].key != 0) {
                    i = (i + 1) & mask;
                }
                fresh[i] = slots_[k];
            }
        }
        std::free(slots_);
        slots_ = fresh;
        mask_ = mask;
        return true;
    }

    static constexpr size_t kHugePage = size_t{2} << 20;
    static size_t round_up(size_t bytes) { return (bytes + kHugePage - 1) / kHugePage * kHugePage; }

    Slot* slots_ = nullptr;
    size_t mask_ = 0;
    size_t size_ = 0;
};

}  // namespace memlens
