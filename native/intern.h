// Interning: strings, locations (code object + bytecode position -> frame id) and the stack
// trie (node = (parent node, frame id)). An allocation's stack is one trie node.
//
// memlens's own Python code (files under the directory given at start) is never interned: its
// locations come back as kOwnFrame, and what is allocated under them is not counted.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "flat_map.h"
#include "frames.h"
#include "writer.h"

namespace memlens {

// Stack ids that are not trie nodes.
constexpr int32_t kNoStack = -1;   // no Python frame (a thread that runs only C)
constexpr int32_t kCutRoot = -2;   // the starting thread, above the first frame it keeps
constexpr int32_t kExcluded = -3;  // under a frame of memlens's own code: never counted
// A location in memlens's own code (location_frame's answer; never a frame id).
constexpr int32_t kOwnFrame = -2;

struct Location {  // (code, bytecode position) -> frame, valid while the code lives
    const void* code;
    uint32_t code_serial;  // codes[code].serial when this was cached
    int32_t frame;
};

// A live code object seen in a stack: its serial and, once one of its positions was new, its
// identity, so that later new positions in it skip the string work.
struct CodeEntry {
    static constexpr uint32_t kUnknown = UINT32_MAX;  // function: not identified yet
    static constexpr uint32_t kOwn = UINT32_MAX - 1;  // function: memlens's own code
    uint32_t serial;
    uint32_t function;  // string id, or kUnknown / kOwn
    uint32_t file;      // string id
    int32_t first_line;
};

// Lines of one code object (line_pool[first, first + units)), for big code objects only.
struct CodeLines {
    const void* code;
    uint32_t code_serial;
    uint32_t first;
    int32_t units;
};

class Interning {
  public:
    Interning() = default;
    Interning(const Interning&) = delete;
    Interning& operator=(const Interning&) = delete;

    // Code objects whose file starts with this path are memlens's own ("" : none).
    void set_own_code_dir(std::string dir) { own_code_dir_ = std::move(dir); }

    // The frame id of a (code, position), cached by the position's address while its code
    // lives; kOwnFrame for memlens's own code.
    [[nodiscard]] int32_t location_frame(const memlens_raw_frame& raw);

    // The trie node (parent, frame); parent may be kCutRoot (then written as a root). Out of
    // memory: the parent (the allocation is charged to the caller).
    [[nodiscard]] int32_t node(int32_t parent, int32_t frame);

    // A code object is about to die: forget its serial. True if it was known (then every
    // cache keyed by code address must be dropped).
    bool forget_code(const void* code);

    [[nodiscard]] const std::vector<std::string>& strings() const { return strings_; }
    [[nodiscard]] const MappedVector<FrameRecord>& frames() const { return frames_; }
    [[nodiscard]] const MappedVector<StackNode>& nodes() const { return nodes_; }

    uint32_t intern_string(const std::string& text);
    void clear();

  private:
    uint32_t intern_str_object(const void* str);
    CodeEntry* code_entry(const void* code);
    bool identify(const void* code, CodeEntry* entry);
    int code_line(const memlens_raw_frame& raw, uint32_t serial);
    bool is_own(const void* filename);

    std::string own_code_dir_;
    std::vector<std::string> strings_;
    std::unordered_map<std::string, uint32_t> string_ids_;  // cold path: new locations only
    MappedVector<FrameRecord> frames_;
    struct FrameKeyHash {
        size_t operator()(const std::array<int64_t, 4>& k) const noexcept {
            uint64_t h = 0;
            for (int64_t v : k) {
                h = (h ^ static_cast<uint64_t>(v)) * 0x9E3779B97F4A7C15ULL;
            }
            return static_cast<size_t>(h ^ (h >> 29));
        }
    };
    // cold path too, but paid at every new position (imports make thousands): hashed
    std::unordered_map<std::array<int64_t, 4>, int32_t, FrameKeyHash> frame_ids_;
    FlatMap<Location> locations_;    // key: position address
    FlatMap<CodeLines> code_lines_;  // key: code object address
    // Each code object seen in a stack gets a serial number, forgotten when it dies, so that
    // a new code object at the same address never matches entries cached for the old one.
    FlatMap<CodeEntry> codes_;  // key: code object address
    uint32_t next_code_serial_ = 0;
    MappedVector<int32_t> line_pool_;
    MappedVector<StackNode> nodes_;
    // Roots are written with parent -1; this tells which of them hang under kCutRoot.
    std::vector<bool> under_cut_root_;
    using NodeIds = IndexTable<28>;  // 4 bits of hash per slot; 268M nodes at most
    NodeIds node_ids_;               // nodes by (parent, frame)
};

}  // namespace memlens
