// Open-addressing hash tables for the hot path (no std::unordered_map: no node allocation per
// entry, one probe sequence in a flat array): FlatMap (key -> value) and IndexTable (the indices
// of a table its owner keeps, found by their elements' keys). Linear probing.
// Memory comes straight from the kernel (table_memory): this module's own calls are never
// patched, and big blocks freed back to malloc would raise glibc's dynamic mmap threshold, so
// that the program's own medium buffers then stay in the heap after they are freed (+14 MiB
// of the program's RSS on the sympy bench).
#pragma once

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>
#include <sys/mman.h>
#include <type_traits>
#include <vector>

// For what every allocation and free does: GCC's own choice moved with every edit, and a helper
// left out of line costs its call and register saves on every event (~20 instructions measured
// with callgrind).
#define MEMLENS_ALWAYS_INLINE __attribute__((always_inline)) inline

namespace memlens {

// Starts loading the cache line at address, which the caller will soon write. An asm
// statement, not __builtin_prefetch: GCC 12 deletes that builtin, with the loads that compute
// its address, when the address is read from memory (no prefetch was left in _native.so).
// A prefetch never faults: a stale address only wastes it.
inline void prefetch_for_write(const void* address) noexcept {
#if defined(__x86_64__) || defined(__i386__)
    asm volatile("prefetcht0 %0" : : "m"(*static_cast<const char*>(address)));
#else
    __builtin_prefetch(address, 1);
#endif
}

// Zeroed, pre-faulted memory for a table of `bytes` (nullptr when out of memory), and its release.
namespace table_memory {

constexpr size_t kHugePage = size_t{2} << 20;
constexpr size_t kSmall = size_t{64} << 10;  // below this, malloc's own bins are fine

// Huge pages only where rounding to them wastes at most an eighth (a 3 MiB table would cost 4).
inline size_t mapped_size(size_t bytes) {
    size_t huge = (bytes + kHugePage - 1) / kHugePage * kHugePage;
    return huge - bytes <= bytes / 8 ? huge : (bytes + 4095) / 4096 * 4096;
}

inline void* allocate(size_t bytes) {
    void* memory = nullptr;
    if (bytes < kSmall) {
        memory = std::malloc(bytes);
    } else {
        size_t size = mapped_size(bytes);
        bool huge = size % kHugePage == 0;
        // A huge-page table is mapped with room to align it, then trimmed.
        size_t span = huge ? size + kHugePage : size;
        void* raw = mmap(nullptr, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (raw == MAP_FAILED) {
            return nullptr;
        }
        auto start = reinterpret_cast<uintptr_t>(raw);
        auto aligned = huge ? (start + kHugePage - 1) / kHugePage * kHugePage : start;
        if (aligned > start) {
            munmap(raw, aligned - start);
        }
        if (span - (aligned - start) > size) {
            munmap(reinterpret_cast<void*>(aligned + size), span - (aligned - start) - size);
        }
        memory = reinterpret_cast<void*>(aligned);
        if (huge) {
            // Probes land at random: on 4 KiB pages nearly every one is a TLB miss. Huge pages
            // (where the kernel allows them on request) make a big table several times faster.
            madvise(memory, size, MADV_HUGEPAGE);
        }
    }
    // Written now, not left to calloc or the kernel's lazily zeroed pages: a probe's read of
    // one maps the shared zero page, and the first write then copies it with a TLB shootdown
    // (an IPI) on every page once the sampler thread exists; the dict-heavy bench ran 10x slower.
    if (memory != nullptr) {
        std::memset(memory, 0, bytes);
    }
    return memory;
}

inline void release(void* memory, size_t bytes) {
    if (memory == nullptr) {
        return;
    }
    if (bytes < kSmall) {
        std::free(memory);
    } else {
        munmap(memory, mapped_size(bytes));
    }
}

// For containers that grow (capture bytes): big blocks mapped, not zeroed; their unused
// capacity costs no memory until it is written.
template <class T>
struct Allocator {
    using value_type = T;
    Allocator() = default;
    template <class U>
    Allocator(const Allocator<U>&) noexcept {}  // NOLINT(google-explicit-constructor)
    T* allocate(size_t n) {
        size_t bytes = n * sizeof(T);
        void* memory = bytes < kSmall ? std::malloc(bytes)
                                      : mmap(nullptr, bytes, PROT_READ | PROT_WRITE,
                                             MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (memory == nullptr || memory == MAP_FAILED) {
            throw std::bad_alloc();
        }
        return static_cast<T*>(memory);
    }
    void deallocate(T* memory, size_t n) noexcept {
        size_t bytes = n * sizeof(T);
        if (bytes < kSmall) {
            std::free(memory);
        } else {
            munmap(memory, bytes);
        }
    }
    template <class U>
    bool operator==(const Allocator<U>&) const noexcept {
        return true;
    }
    template <class U>
    bool operator!=(const Allocator<U>&) const noexcept {
        return false;
    }
};

inline size_t hash(uint64_t key) {
    key ^= key >> 33;
    key *= 0xff51afd7ed558ccdULL;
    key ^= key >> 33;
    return static_cast<size_t>(key);
}

// The table of `*mask + 1` slots (none yet when null) doubled (1,024 slots at first), each
// occupied slot placed by its key; *mask is updated. nullptr when out of memory (old stays).
template <class Slot, class KeyOf, class IsEmpty>
Slot* grown(Slot* old, size_t* mask, const KeyOf& key_of, const IsEmpty& empty) {
    size_t capacity = old ? (*mask + 1) * 2 : 1024;
    auto* fresh = static_cast<Slot*>(allocate(capacity * sizeof(Slot)));
    if (fresh == nullptr) {
        return nullptr;
    }
    size_t fresh_mask = capacity - 1;
    for (size_t k = 0; old && k <= *mask; ++k) {
        if (!empty(old[k])) {
            size_t i = hash(key_of(old[k])) & fresh_mask;
            while (!empty(fresh[i])) {
                i = (i + 1) & fresh_mask;
            }
            fresh[i] = old[k];
        }
    }
    release(old, old ? (*mask + 1) * sizeof(Slot) : 0);
    *mask = fresh_mask;
    return fresh;
}

}  // namespace table_memory

// A vector whose unused capacity costs no memory (mapped, not touched until written).
template <class T>
using MappedVector = std::vector<T, table_memory::Allocator<T>>;

template <class Value>
class FlatMap {
    static_assert(std::is_trivially_copyable_v<Value>, "slots are moved with plain copies");

  public:
    FlatMap() = default;
    FlatMap(const FlatMap&) = delete;
    FlatMap& operator=(const FlatMap&) = delete;
    ~FlatMap() { table_memory::release(slots_, bytes()); }

    void clear() {
        table_memory::release(slots_, bytes());
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
            prefetch_for_write(&slots[hash(key) & mask_]);
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

    static size_t hash(uint64_t key) { return table_memory::hash(key); }
    [[nodiscard]] size_t bytes() const { return slots_ ? (mask_ + 1) * sizeof(Slot) : 0; }

    bool grow() {
        Slot* fresh = table_memory::grown(
            slots_, &mask_, [](const Slot& slot) { return slot.key; },
            [](const Slot& slot) { return slot.key == 0; });
        slots_ = fresh != nullptr ? fresh : slots_;
        return fresh != nullptr;
    }

    Slot* slots_ = nullptr;
    size_t mask_ = 0;
    size_t size_ = 0;
};

// The elements of a table its owner keeps (rows, trie nodes), found by key: a slot holds the
// element's index + 1 (0: empty) in its low kIndexBits, 4 B where a FlatMap<uint32_t> slot is
// 16, and a probe reads the element to compare keys (key_of(index)). For lookups that then
// touch the element anyway. Linear probing, at most half or 3/4 full (kMaxLoadQuarters). The
// bits above the index hold a few bits of the key's hash, so that a probe reads an element only
// when they match: each element read is a cache miss once the elements outgrow the cache (the
// recursion bench's 300,000 new rows, C++ alone: 245 -> 165 ns each). The owner adds elements
// in index order (0, 1, 2, ...), each once: growing then rehashes them in that order, reading
// them one after another instead of at random.
template <unsigned kIndexBits>
class IndexTable {
    static_assert(kIndexBits >= 16 && kIndexBits <= 32, "a slot is 32 bits");

  public:
    // The largest index a slot can hold (index + 1 must fit in kIndexBits).
    static constexpr uint32_t kMaxIndex = static_cast<uint32_t>((uint64_t{1} << kIndexBits) - 2);

    // Where a key is: the slot of its element, or the empty slot an insert of it takes.
    struct Place {
        uint32_t* slot;  // nullptr when out of memory
        uint32_t tag;
        [[nodiscard]] bool found() const { return *slot != 0; }
        [[nodiscard]] uint32_t index() const { return (*slot & kIndexMask) - 1; }
    };

    IndexTable() = default;
    IndexTable(const IndexTable&) = delete;
    IndexTable& operator=(const IndexTable&) = delete;
    ~IndexTable() { table_memory::release(slots_, bytes()); }

    void clear() {
        table_memory::release(slots_, bytes());
        slots_ = nullptr;
        mask_ = 0;
        size_ = 0;
    }

    // The place of the element whose key is key; when it is not found() the caller adds the
    // element (index: the number filled so far) and calls fill.
    template <class KeyOf>
    [[nodiscard]] Place find(uint64_t key, const KeyOf& key_of) {
        if ((size_ + 1) * 4 > (mask_ + 1) * kMaxLoadQuarters && !grow(key_of)) {
            return {nullptr, 0};
        }
        size_t hash = table_memory::hash(key);
        uint32_t tag = tag_of(hash);
        size_t i = hash & mask_;
        for (; slots_[i] != 0; i = (i + 1) & mask_) {
            if ((slots_[i] & ~kIndexMask) == tag && key_of((slots_[i] & kIndexMask) - 1) == key) {
                break;
            }
        }
        return {&slots_[i], tag};
    }

    // The index of the element whose key is key, plus 1; 0 when there is none. Never grows.
    template <class KeyOf>
    [[nodiscard]] uint32_t lookup(uint64_t key, const KeyOf& key_of) const {
        if (slots_ == nullptr) {
            return 0;
        }
        size_t hash = table_memory::hash(key);
        uint32_t tag = tag_of(hash);
        for (size_t i = hash & mask_; slots_[i] != 0; i = (i + 1) & mask_) {
            if ((slots_[i] & ~kIndexMask) == tag && key_of((slots_[i] & kIndexMask) - 1) == key) {
                return slots_[i] & kIndexMask;
            }
        }
        return 0;
    }

    // Records the next index at an empty place that find returned (no other call in between).
    void fill(const Place& place, uint32_t index) {
        *place.slot = place.tag | (index + 1);
        ++size_;
    }

  private:
    static constexpr uint32_t kIndexMask = static_cast<uint32_t>((uint64_t{1} << kIndexBits) - 1);
    // How full the table may get, in quarters. With 8 bits of hash a probe past another key
    // reads its element once in 256, so a table 3/4 full costs little more to search than one
    // half full, and it is half the size over much of its growth (the recursion's 300,000 rows:
    // 2 MiB, not 4; their 300,000 row() calls, C++ alone: 44 -> 35 ms); with 4 bits (nodes: once
    // in 16) 3/4 was slower.
    static constexpr size_t kMaxLoadQuarters = kIndexBits <= 24 ? 3 : 2;

    // The hash's top bits (its low bits choose the slot), above the index.
    static uint32_t tag_of(size_t hash) {
        if constexpr (kIndexBits == 32) {
            return 0;
        } else {
            return static_cast<uint32_t>(hash >> (64 - (32 - kIndexBits))) << kIndexBits;
        }
    }

    // Twice the slots (1,024 at first), the elements placed again in index order.
    template <class KeyOf>
    bool grow(const KeyOf& key_of) {
        size_t capacity = slots_ ? (mask_ + 1) * 2 : 1024;
        auto* fresh = static_cast<uint32_t*>(table_memory::allocate(capacity * sizeof(uint32_t)));
        if (fresh == nullptr) {
            return false;
        }
        size_t fresh_mask = capacity - 1;
        for (size_t index = 0; index < size_; ++index) {
            size_t hash = table_memory::hash(key_of(static_cast<uint32_t>(index)));
            size_t i = hash & fresh_mask;
            while (fresh[i] != 0) {
                i = (i + 1) & fresh_mask;
            }
            fresh[i] = tag_of(hash) | static_cast<uint32_t>(index + 1);
        }
        table_memory::release(slots_, bytes());
        slots_ = fresh;
        mask_ = fresh_mask;
        return true;
    }

    [[nodiscard]] size_t bytes() const { return slots_ ? (mask_ + 1) * sizeof(uint32_t) : 0; }

    uint32_t* slots_ = nullptr;
    size_t mask_ = 0;
    size_t size_ = 0;
};

}  // namespace memlens
