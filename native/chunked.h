// A growable array in fixed chunks: growing never copies what is there, so a table of N
// elements costs N elements plus one chunk, where a doubling vector costs up to 2N while it
// grows and 3N during the copy (the recursion bench: 300,000 rows of 88 B were +69 MiB at their
// peak in a vector, +26 MiB here). Indexing is one extra load, of a directory that stays cached.
// Chunks are mapped (table_memory): freed, they go back to the kernel, never to malloc's heap.
#pragma once

#include <cstddef>
#include <memory>
#include <type_traits>
#include <vector>

#include "flat_map.h"

namespace memlens {

template <class T, int kChunkShift = 12>
class Chunked {
    static_assert(std::is_trivially_copyable_v<T> && std::is_trivially_default_constructible_v<T>,
                  "a chunk is raw memory until each element is assigned");

  public:
    static constexpr size_t kChunk = size_t{1} << kChunkShift;

    T& operator[](size_t i) noexcept { return chunks_[i >> kChunkShift][i & (kChunk - 1)]; }
    const T& operator[](size_t i) const noexcept {
        return chunks_[i >> kChunkShift][i & (kChunk - 1)];
    }
    [[nodiscard]] size_t size() const noexcept { return size_; }

    // Throws std::bad_alloc when out of memory (nothing changes then).
    void push_back(const T& value) {
        if ((size_ & (kChunk - 1)) == 0 && (size_ >> kChunkShift) == chunks_.size()) {
            if (chunks_.size() == chunks_.capacity()) {
                chunks_.reserve(2 * chunks_.size() + 8);  // then emplace_back cannot throw
            }
            chunks_.emplace_back(table_memory::Allocator<T>().allocate(kChunk));
        }
        (*this)[size_] = value;
        ++size_;
    }

    // Drops every element and gives the memory back.
    void clear() noexcept {
        chunks_.clear();
        chunks_.shrink_to_fit();
        size_ = 0;
    }

  private:
    struct FreeChunk {
        void operator()(T* chunk) const noexcept {
            table_memory::Allocator<T>().deallocate(chunk, kChunk);
        }
    };
    std::vector<std::unique_ptr<T[], FreeChunk>> chunks_;
    size_t size_ = 0;
};

}  // namespace memlens
