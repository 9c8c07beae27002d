// Holders (holders.h): back-reference chains over the census's object graph.
//
// The census's graph is reversed once (referent -> its referrers, through tp_traverse, as
// gc.get_referrers does, but over every object the census reached: the dicts the collector
// untracks and the threads' frames too). A group is first tested as a whole for an unreachable
// cycle: if the objects above it (its referrers, theirs, ...) reach no root and every one of
// them is referenced only from inside that set (the collector's own test: refcount minus
// internal references is 0), nothing outside Python's reach holds it. Otherwise its objects'
// direct holders are ranked by how many of the group they hold, and each is climbed breadth
// first to the nearest root: a module, a class (heap type) or a frame.
#include "holders.h"

#include <frameobject.h>

#include <algorithm>
#include <optional>
#include <tuple>
#include <unordered_map>

#include "clock.h"

namespace memlens {
namespace {

constexpr uint32_t kNone = UINT32_MAX;
constexpr size_t kClockEvery = 4096;
constexpr size_t kClimbLimit = 1'000'000;  // objects one climb may visit
constexpr size_t kCycleSteps = 16;         // the sample cycle of an unreachable group

// Referrers of each object, as compressed rows: from[start[j] .. start[j + 1]) refer to j.
struct Graph {
    MappedVector<uint32_t> start;
    MappedVector<uint32_t> from;
};

// The census's references reversed: the referrers of each object, in the order of the
// census's traversal, then the running frames whose locals hold it. Filled from the back (each
// object's range end moves down to its start) in reverse order, which keeps that order without
// an array of cursors (4 B an object).
void build_graph(const Census& census, Graph* graph) {
    size_t n = census.objects.size();
    const auto& rows = census.referents_start;
    auto& start = graph->start;
    start.assign(n + 1, 0);
    for (size_t e = 0; e < census.referents.size(); ++e) start[census.referents[e] + 1] += 1;
    for (const auto& [frame, locals] : census.frame_locals) {
        for (uint32_t value : locals) start[value + 1] += 1;
    }
    for (size_t j = 0; j < n; ++j) start[j + 1] += start[j];
    graph->from.resize(start[n]);
    for (auto f = census.frame_locals.rbegin(); f != census.frame_locals.rend(); ++f) {
        for (auto v = f->second.rbegin(); v != f->second.rend(); ++v) {
            graph->from[--start[*v + 1]] = f->first;
        }
    }
    for (auto i = static_cast<uint32_t>(n); i-- > 0;) {
        for (uint32_t e = rows[i + 1]; e-- > rows[i];) {
            graph->from[--start[census.referents[e] + 1]] = i;
        }
    }
    // start[j + 1] is where j's range begins now: moved down to start[j].
    for (size_t j = 0; j < n; ++j) start[j] = start[j + 1];
    start[n] = static_cast<uint32_t>(graph->from.size());
}

std::optional<RootKind> root_kind(PyObject* object) {
    if (PyModule_Check(object)) return RootKind::kModule;
    if (PyType_Check(object) &&
        (reinterpret_cast<PyTypeObject*>(object)->tp_flags & Py_TPFLAGS_HEAPTYPE)) {
        return RootKind::kClass;
    }
    if (PyFrame_Check(object)) return RootKind::kFrame;
    return std::nullopt;
}

// A breadth-first climb up the referrers, reusing its arrays between climbs (a new mark each).
struct Climb {
    const Census& census;
    const Graph& graph;
    int64_t deadline;
    MappedVector<uint8_t> mark;  // == round: visited in this climb (1 B: cleared every 255)
    MappedVector<uint32_t> via;  // the object it was reached from (kNone for a source)
    MappedVector<uint32_t> visited;
    uint8_t round = 0;
    bool cut = false;  // the last climb hit the deadline or the size limit

    Climb(const Census& c, const Graph& g, int64_t d)
        : census(c),
          graph(g),
          deadline(d),
          mark(c.objects.size(), 0),
          via(c.objects.size(), kNone) {}

    // From the sources up to the nearest root (its index), or kNone: then `visited` is the
    // whole set above the sources, unless `cut`.
    uint32_t run(const MappedVector<uint32_t>& sources) {
        if (++round == 0) {
            std::fill(mark.begin(), mark.end(), 0);
            round = 1;
        }
        cut = false;
        visited.clear();
        for (uint32_t s : sources) {
            if (mark[s] != round) {
                mark[s] = round;
                via[s] = kNone;
                visited.push_back(s);
            }
        }
        for (size_t head = 0; head < visited.size(); ++head) {
            uint32_t j = visited[head];
            for (uint32_t e = graph.start[j]; e < graph.start[j + 1]; ++e) {
                uint32_t i = graph.from[e];
                if (mark[i] == round) continue;
                mark[i] = round;
                via[i] = j;
                visited.push_back(i);
                if (root_kind(census.objects[i])) return i;
            }
            if ((head % kClockEvery == 0 && monotonic_ns() > deadline) ||
                visited.size() > kClimbLimit) {
                cut = true;
                return kNone;
            }
        }
        return kNone;
    }

    // The collector's test on `visited` after a climb that found no root: every object's
    // references all come from inside the set (or from the census's seeds list).
    bool unreachable() const {
        for (uint32_t x : visited) {
            Py_ssize_t internal = 0;
            for (uint32_t e = graph.start[x]; e < graph.start[x + 1]; ++e) {
                internal += mark[graph.from[e]] == round;
            }
            if (Py_REFCNT(census.objects[x]) - census.seed_refs[x] != internal) return false;
        }
        return true;
    }

    // The chain from the holder (a source) to the root found.
    std::vector<PyObject*> chain_to(uint32_t root) const {
        std::vector<PyObject*> chain;
        for (uint32_t at = root; at != kNone; at = via[at]) chain.push_back(census.objects[at]);
        std::reverse(chain.begin(), chain.end());
        return chain;
    }
};

// One cycle through `first`, referrer by referrer, for the text of an unreachable group.
std::vector<PyObject*> sample_cycle(const Census& census, const Graph& graph, uint32_t first) {
    std::vector<PyObject*> chain;
    uint32_t at = first;
    for (size_t step = 0; step < kCycleSteps; ++step) {
        if (graph.start[at] == graph.start[at + 1]) break;
        at = graph.from[graph.start[at]];
        chain.push_back(census.objects[at]);
        if (at == first) break;
    }
    return chain;
}

struct DirectHolder {
    uint32_t holder;
    uint32_t member;  // one of the objects it holds
    int64_t count, bytes;
};

// The group's direct holders, most objects first.
std::vector<DirectHolder> direct_holders(const Census& census, const Graph& graph, uint32_t group,
                                         const MappedVector<uint32_t>& members) {
    std::unordered_map<uint32_t, DirectHolder> held;
    for (uint32_t m : members) {
        for (uint32_t e = graph.start[m]; e < graph.start[m + 1]; ++e) {
            uint32_t r = graph.from[e];
            if (census.group_of[r] == group) continue;  // the group's own links
            auto [it, fresh] = held.emplace(r, DirectHolder{r, m, 0, 0});
            if (!fresh && it->second.member == m) continue;  // one object, referred twice
            it->second.member = m;
            it->second.count += 1;
            it->second.bytes += census.bytes[m];
        }
    }
    std::vector<DirectHolder> ranked;
    ranked.reserve(held.size());
    for (const auto& entry : held) ranked.push_back(entry.second);
    std::sort(ranked.begin(), ranked.end(), [](const DirectHolder& a, const DirectHolder& b) {
        return a.count != b.count ? a.count > b.count : a.holder < b.holder;
    });
    return ranked;
}

void explain_group(const Census& census, const Graph& graph, Climb& climb, uint32_t group,
                   const MappedVector<uint32_t>& members, size_t per_group, HolderSearch* search) {
    const CensusGroup& g = census.groups[group];
    if (climb.run(members) == kNone && !climb.cut && climb.unreachable()) {
        std::vector<PyObject*> chain{census.objects[members.front()]};
        for (PyObject* object : sample_cycle(census, graph, members.front())) {
            chain.push_back(object);
        }
        search->holders.push_back({group, RootKind::kUnreachable, g.count, g.bytes, chain});
        return;
    }
    search->complete = search->complete && !climb.cut;
    auto ranked = direct_holders(census, graph, group, members);
    for (size_t k = 0; k < std::min(per_group, ranked.size()); ++k) {
        const DirectHolder& direct = ranked[k];
        HolderChain chain{group,
                          RootKind::kUnknown,
                          direct.count,
                          direct.bytes,
                          {census.objects[direct.member], census.objects[direct.holder]}};
        if (std::optional<RootKind> kind = root_kind(census.objects[direct.holder])) {
            chain.root = *kind;  // held straight by a frame's locals
            search->holders.push_back(std::move(chain));
            continue;
        }
        uint32_t root = climb.run({direct.holder});
        if (root != kNone) {
            chain.root = *root_kind(census.objects[root]);
            chain.chain = climb.chain_to(root);
            chain.chain.insert(chain.chain.begin(), census.objects[direct.member]);
        } else if (!climb.cut && climb.unreachable()) {
            chain.root = RootKind::kUnreachable;
        }
        search->complete = search->complete && !climb.cut;
        search->holders.push_back(std::move(chain));
        if (monotonic_ns() > climb.deadline) {
            search->complete = false;
            return;
        }
    }
}

}  // namespace

HolderSearch find_holders(Census& census, size_t groups, size_t per_group, int64_t deadline) {
    HolderSearch search;
    groups = std::min(groups, census.groups.size());
    if (groups == 0) {
        return search;
    }
    Graph graph;
    build_graph(census, &graph);
    census.referents.clear();  // read by nothing after this: its memory goes to the climbs
    census.referents_start = {};
    std::vector<MappedVector<uint32_t>> members(groups);
    for (uint32_t g = 0; g < groups; ++g) {
        members[g].reserve(static_cast<size_t>(census.groups[g].count));  // exact: no regrowth
    }
    for (size_t i = 0; i < census.group_of.size(); ++i) {
        if (census.group_of[i] < groups)
            members[census.group_of[i]].push_back(static_cast<uint32_t>(i));
    }
    Climb climb(census, graph, deadline);
    for (uint32_t g = 0; g < groups; ++g) {
        if (monotonic_ns() > deadline) {
            search.complete = false;
            break;
        }
        explain_group(census, graph, climb, g, members[g], per_group, &search);
    }
    return search;
}

}  // namespace memlens
