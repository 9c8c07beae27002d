// Interning of locations and the stack trie. Cold path: reached only when a thread's leaf cache
// misses (a new position, a new parent).
#include "intern.h"

namespace memlens {
namespace {

constexpr int kLineArrayMinUnits = 64;  // below this a direct lookup is as cheap
constexpr size_t kMaxStringBytes = 1024;

}  // namespace

uint32_t Interning::intern_string(const std::string& text) {
    auto found = string_ids_.find(text);
    if (found != string_ids_.end()) {
        return found->second;
    }
    auto index = static_cast<uint32_t>(strings_.size());
    strings_.push_back(text);
    string_ids_.emplace(text, index);
    return index;
}

uint32_t Interning::intern_str_object(const void* str) {
    char buf[kMaxStringBytes];
    size_t n = memlens_str_utf8(str, buf, sizeof(buf));
    return intern_string(std::string(buf, n));
}

bool Interning::is_own(const void* filename) {
    if (own_code_dir_.empty()) {
        return false;
    }
    char buf[kMaxStringBytes];
    size_t n = memlens_str_utf8(filename, buf, sizeof(buf));
    return n >= own_code_dir_.size() &&
           own_code_dir_.compare(0, own_code_dir_.size(), buf, own_code_dir_.size()) == 0;
}

// The source line of a position; big code objects get their whole line table decoded once.
int Interning::code_line(const memlens_raw_frame& raw, uint32_t serial) {
    int unit = memlens_frame_unit(raw.code, raw.instr);
    int units = memlens_code_units(raw.code);
    if (unit < 0 || units < kLineArrayMinUnits) {
        return memlens_frame_line(raw.code, raw.instr);
    }
    bool inserted = false;
    CodeLines* entry = code_lines_.insert(reinterpret_cast<uint64_t>(raw.code), &inserted);
    if (entry == nullptr) {
        return memlens_frame_line(raw.code, raw.instr);
    }
    if (inserted || entry->code_serial != serial || entry->units != units) {
        // A stale entry of the same size is rewritten in place, so exec'd code reusing one
        // address does not grow the pool.
        if (inserted || entry->units != units) {
            entry->first = static_cast<uint32_t>(line_pool_.size());
            line_pool_.resize(line_pool_.size() + static_cast<size_t>(units));
        }
        entry->code = raw.code;
        entry->code_serial = serial;
        entry->units = units;
        memlens_code_lines(raw.code, &line_pool_[entry->first], units);
    }
    return unit < units ? line_pool_[entry->first + static_cast<uint32_t>(unit)]
                        : memlens_frame_line(raw.code, raw.instr);
}

// The entry of a live code object, made with a new serial on first sight (nullptr if the
// table is out of memory: then nothing about it is cached).
CodeEntry* Interning::code_entry(const void* code) {
    bool inserted = false;
    CodeEntry* entry = codes_.insert(reinterpret_cast<uint64_t>(code), &inserted);
    if (entry != nullptr && inserted) {
        *entry = CodeEntry{++next_code_serial_, CodeEntry::kUnknown, 0, 0};
    }
    return entry;
}

// Fills in a code object's identity on its first new position; false for memlens's own code.
bool Interning::identify(const void* code, CodeEntry* entry) {
    if (entry->function == CodeEntry::kUnknown) {
        memlens_code_identity identity;
        memlens_identify_code(code, &identity);
        if (is_own(identity.filename)) {
            entry->function = CodeEntry::kOwn;
        } else {
            entry->function = intern_str_object(identity.name);
            entry->file = intern_str_object(identity.filename);
            entry->first_line = identity.first_line;
        }
    }
    return entry->function != CodeEntry::kOwn;
}

int32_t Interning::location_frame(const memlens_raw_frame& raw) {
    CodeEntry scratch{0, CodeEntry::kUnknown, 0, 0};
    CodeEntry* entry = code_entry(raw.code);
    uint32_t serial = entry ? entry->serial : 0;
    auto key = reinterpret_cast<uint64_t>(raw.instr) | 1;  // never 0
    Location* cached = locations_.find(key);
    if (cached && serial != 0 && cached->code == raw.code && cached->code_serial == serial) {
        return cached->frame;
    }
    CodeEntry& code = entry ? *entry : scratch;  // scratch: no memory to cache it
    int32_t frame = kOwnFrame;
    if (identify(raw.code, &code)) {
        int line = code_line(raw, serial);
        std::array<int64_t, 4> frame_key{code.function, code.file, line, code.first_line};
        auto found = frame_ids_.find(frame_key);
        if (found != frame_ids_.end()) {
            frame = found->second;
        } else {
            frame = static_cast<int32_t>(frames_.size());
            frames_.push_back({code.function, code.file, line, code.first_line});
            frame_ids_.emplace(frame_key, frame);
        }
    }
    bool inserted = false;
    Location* slot = locations_.insert(key, &inserted);
    if (slot) {
        *slot = Location{raw.code, serial, frame};
    }
    return frame;
}

namespace {

// parent + 3: kCutRoot's children and true roots (kNoStack) get distinct keys.
uint64_t node_key(int32_t parent, int32_t frame) {
    return (static_cast<uint64_t>(parent + 3) << 32) | static_cast<uint32_t>(frame);
}

}  // namespace

int32_t Interning::node(int32_t parent, int32_t frame) {
    if (nodes_.size() > NodeIds::kMaxIndex) {
        return parent;  // 268M nodes: charge the caller, as out of memory
    }
    NodeIds::Place place = node_ids_.find(node_key(parent, frame), [this](uint32_t i) {
        const StackNode& n = nodes_[i];
        return node_key(n.parent == kNoStack && under_cut_root_[i] ? kCutRoot : n.parent, n.frame);
    });
    if (place.slot == nullptr) {
        return parent;  // out of memory: charge the caller
    }
    if (!place.found()) {
        auto index = static_cast<uint32_t>(nodes_.size());
        nodes_.push_back({parent < 0 ? kNoStack : parent, frame});
        try {
            under_cut_root_.push_back(parent == kCutRoot);
        } catch (...) {
            nodes_.pop_back();  // the two stay in step
            throw;
        }
        node_ids_.fill(place, index);
    }
    return static_cast<int32_t>(place.index());
}

bool Interning::forget_code(const void* code) {
    CodeEntry entry{};
    return codes_.erase(reinterpret_cast<uint64_t>(code), &entry);
}

void Interning::clear() {
    strings_.clear();
    string_ids_.clear();
    frames_.clear();
    frame_ids_.clear();
    locations_.clear();
    code_lines_.clear();
    codes_.clear();
    line_pool_.clear();
    nodes_.clear();
    under_cut_root_.clear();
    node_ids_.clear();
}

}  // namespace memlens
