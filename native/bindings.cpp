// memlens._native: the Python face of the tracker. The only file that knows pybind11.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>
#include <frameobject.h>

#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <optional>
#include <tuple>
#include <unordered_map>
#include <utility>
#include <string>
#include <vector>

#include "aggregate.h"  // TemporaryWindow::kMaxThreshold
#include "clock.h"
#include "holders.h"
#include "objects.h"
#include "reach.h"
#include "tracker.h"

namespace py = pybind11;

namespace {

[[noreturn]] void raise_os_error(int error, const std::string& path) {
    errno = error;
    PyErr_SetFromErrnoWithFilename(PyExc_OSError, path.c_str());
    throw py::error_already_set();
}

// Fail at start, not at the end of a long run, when the capture could not be written.
void check_writable(const std::string& output) {
    struct stat st {};
    if (stat(output.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
        raise_os_error(EISDIR, output);
    }
    size_t slash = output.rfind('/');
    std::string directory = slash == std::string::npos ? "." : output.substr(0, slash);
    if (directory.empty()) directory = "/";
    if (access(directory.c_str(), W_OK) != 0) {
        raise_os_error(errno, directory);
    }
}

// The script may chdir(): the capture must still land where the user asked.
std::string absolute_path(const std::string& path) {
    if (!path.empty() && path[0] == '/') return path;
    char cwd[4096];
    if (getcwd(cwd, sizeof(cwd)) == nullptr) return path;
    return std::string(cwd) + "/" + path;
}

std::string python_version() {
    std::string full = Py_GetVersion();  // "3.11.7 (main, ...) [GCC ...]"
    return full.substr(0, full.find(' '));
}

std::string platform_name() {
    utsname u{};
    if (uname(&u) != 0) return "unknown";
    std::string system = u.sysname;
    for (char& c : system) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return system + "-" + u.machine;
}

// Names of the threads Python knows, for those not named through set_thread_name. Called with
// the guard held, so these few objects are not counted as the program's.
void name_python_threads(const memlens::Guard& guard) {
    py::dict modules = py::module_::import("sys").attr("modules");
    if (!modules.contains("threading")) return;
    for (py::handle thread : modules["threading"].attr("enumerate")()) {
        py::object ident = thread.attr("ident");
        if (ident.is_none()) continue;
        memlens::set_thread_name(guard, ident.cast<uint64_t>(),
                                 thread.attr("name").cast<std::string>());
    }
}

// The depth of a frame of the calling thread (1 for its outermost frame) and its code.
std::pair<int, const void*> frame_depth(py::handle frame) {
    if (frame.is_none()) return {0, nullptr};
    if (!PyFrame_Check(frame.ptr())) throw py::type_error("cut must be a frame or None");
    auto* current = reinterpret_cast<PyFrameObject*>(frame.ptr());
    PyCodeObject* code = PyFrame_GetCode(current);
    const void* code_address = code;
    Py_DECREF(code);  // the frame keeps it alive while it runs
    int depth = 1;
    Py_INCREF(current);
    for (PyFrameObject* back = PyFrame_GetBack(current); back != nullptr;
         back = PyFrame_GetBack(current)) {
        Py_DECREF(current);
        current = back;
        ++depth;
    }
    Py_DECREF(current);
    return {depth, code_address};
}

// The focus code object of the current session, kept alive while it is compared by address.
py::object& focus_code_holder() {
    static auto* holder = new py::object();  // never destroyed: no Python at static exit
    return *holder;
}

const char* root_name(memlens::RootKind root) {
    switch (root) {
        case memlens::RootKind::kModule:
            return "module";
        case memlens::RootKind::kClass:
            return "class";
        case memlens::RootKind::kFrame:
            return "frame";
        case memlens::RootKind::kUnreachable:
            return "unreachable";
        case memlens::RootKind::kUnknown:
            break;
    }
    return "unknown";
}

// Numbers for Python as native int64s in one bytes object (memoryview(...).cast("q")): the exit
// snapshot's tens of thousands of groups and rows as tuples of ints were megabytes.
py::bytes packed(const std::vector<int64_t>& numbers) {
    return py::bytes(reinterpret_cast<const char*>(numbers.data()),
                     numbers.size() * sizeof(int64_t));
}

// The records of K int64s each in such bytes.
template <size_t K>
std::vector<std::array<int64_t, K>> unpack(const py::bytes& data) {
    std::string_view view(data);
    std::vector<std::array<int64_t, K>> records(view.size() / (K * sizeof(int64_t)));
    std::memcpy(records.data(), view.data(), records.size() * K * sizeof(int64_t));
    return records;
}

// A census and its holders in one call: the census's object pointers are borrowed, valid only
// while no Python code runs. Built with the guard held: none of it is the program's memory.
py::tuple census(const memlens::Guard& guard, py::list seeds, py::list frame_locals,
                 py::list exclude, double budget_s, double holders_budget_s, size_t groups,
                 size_t per_group, py::object roots) {
    memlens::Census census;
    int64_t deadline = memlens::monotonic_ns() + static_cast<int64_t>(budget_s * 1e9);
    memlens::take_census(guard, seeds.ptr(), frame_locals.ptr(), exclude.ptr(), deadline, &census);
    py::object referenced = py::none();
    if (py::isinstance<py::list>(roots)) {
        // The same budget as the census: the two are one walk of the heap each.
        memlens::ReferencedRecord marked = memlens::mark_referenced(
            guard, census, roots.ptr(),
            memlens::monotonic_ns() + static_cast<int64_t>(budget_s * 1e9));
        std::vector<int64_t> rows;
        for (const memlens::ReferencedRow& r : marked.rows) {
            rows.insert(rows.end(), {int64_t{r.row}, r.count, r.bytes});
        }
        referenced = py::make_tuple(marked.complete, packed(rows));
    }
    census.release_index();  // the holders walk the census's graph
    memlens::HolderSearch search = memlens::find_holders(
        census, groups, per_group,
        memlens::monotonic_ns() + static_cast<int64_t>(holders_budget_s * 1e9));
    py::list types;
    std::unordered_map<PyTypeObject*, int64_t> type_index;
    std::vector<int64_t> out_groups;
    for (const memlens::CensusGroup& g : census.groups) {
        auto [at, fresh] = type_index.emplace(g.type, static_cast<int64_t>(type_index.size()));
        if (fresh) types.append(py::handle(reinterpret_cast<PyObject*>(g.type)));
        out_groups.insert(out_groups.end(), {at->second, int64_t{g.stack}, g.count, g.bytes});
    }
    py::list out_holders;
    for (const memlens::HolderChain& h : search.holders) {
        py::list chain;
        for (PyObject* object : h.chain) chain.append(py::handle(object));
        out_holders.append(py::make_tuple(h.group, root_name(h.root), h.count, h.bytes, chain));
    }
    return py::make_tuple(census.t_ms, census.complete, types, packed(out_groups), search.complete,
                          out_holders, referenced);
}

// Capture bytes built with the guard held: the bytes object is ours, not the program's.
py::bytes to_bytes(const memlens::Guard&, const memlens::CaptureBytes& data) {
    return py::bytes(data.data(), data.size());
}

}  // namespace

PYBIND11_MODULE(_native, m) {
    m.doc() = "memlens native allocation tracker (in-process allocator hooks).";

    m.def(
        "start",
        [](std::optional<std::string> output, bool python_allocators, bool follow_fork,
           double checkpoint_interval, std::vector<std::string> argv, std::string memlens_version,
           py::handle cut, std::string own_code_dir, py::handle focus_code,
           bool current_thread_only, int temporary_threshold) {
            if (memlens::is_tracking()) {
                throw std::runtime_error("memlens is already tracking in this process");
            }
            if (checkpoint_interval < 0) {
                throw py::value_error("checkpoint_interval must be >= 0");
            }
            if (temporary_threshold < 0 ||
                temporary_threshold > memlens::TemporaryWindow::kMaxThreshold) {
                throw py::value_error("temporary_threshold must be between 0 and " +
                                      std::to_string(memlens::TemporaryWindow::kMaxThreshold));
            }
            if (output) {
                *output = absolute_path(*output);
                check_writable(*output);
            }
            memlens::TrackerOptions options;
            options.output = output.value_or("");
            options.python_allocators = python_allocators;
            options.follow_fork = follow_fork;
            options.checkpoint_interval = checkpoint_interval;
            options.argv = std::move(argv);
            options.memlens_version = std::move(memlens_version);
            options.python_version = python_version();
            options.platform = platform_name();
            if (!focus_code.is_none() && !PyCode_Check(focus_code.ptr())) {
                throw py::type_error("focus_code must be a code object or None");
            }
            std::tie(options.cut_depth, options.cut_code) = frame_depth(cut);
            options.own_code_dir = std::move(own_code_dir);
            options.focus_code = focus_code.is_none() ? nullptr : focus_code.ptr();
            options.current_thread_only = current_thread_only;
            options.temporary_threshold = temporary_threshold;
            memlens::Guard guard;
            if (memlens::start(guard, std::move(options)) != memlens::StartError::kNone) {
                throw std::runtime_error("memlens is already tracking in this process");
            }
            focus_code_holder() = py::reinterpret_borrow<py::object>(focus_code);
            name_python_threads(guard);
        },
        py::arg("output"), py::kw_only(), py::arg("python_allocators") = true,
        py::arg("follow_fork") = false, py::arg("checkpoint_interval") = 1.0,
        py::arg("argv") = std::vector<std::string>{}, py::arg("memlens_version") = "",
        py::arg("cut") = py::none(), py::arg("own_code_dir") = "",
        py::arg("focus_code") = py::none(), py::arg("current_thread_only") = false,
        py::arg("temporary_threshold") = 1,
        "Start tracking every allocation of this process (GOT hooks + Python allocators).");

    m.def(
        "stop",
        [](std::optional<int> exit_code) -> py::bytes {
            memlens::Guard guard;
            if (memlens::is_tracking()) name_python_threads(guard);
            int write_error = 0;
            std::optional<memlens::CaptureBytes> capture =
                memlens::stop(guard, exit_code, &write_error);
            if (!capture) {
                throw std::runtime_error("memlens is not tracking");
            }
            focus_code_holder() = py::none();
            py::bytes data = to_bytes(guard, *capture);
            if (write_error != 0) {
                // Nothing lost: the capture rides on the exception as `.capture`.
                errno = write_error;
                PyErr_SetFromErrno(PyExc_OSError);
                PyObject *type, *value, *traceback;
                PyErr_Fetch(&type, &value, &traceback);
                PyErr_NormalizeException(&type, &value, &traceback);
                PyObject_SetAttrString(value, "capture", data.ptr());
                PyErr_Restore(type, value, traceback);
                throw py::error_already_set();
            }
            return data;
        },
        py::arg("exit_code") = py::none(),
        "Stop tracking; return the complete capture (also written to the output path).");

    m.def(
        "snapshot",
        []() -> py::bytes {
            memlens::Guard guard;
            if (memlens::is_tracking()) name_python_threads(guard);
            std::optional<memlens::CaptureBytes> capture = memlens::snapshot(guard);
            if (!capture) {
                throw std::runtime_error("memlens is not tracking");
            }
            return to_bytes(guard, *capture);
        },
        "The capture so far (complete=False); tracking goes on.");

    m.def(
        "census",
        [](py::list seeds, py::list frame_locals, py::list exclude, double budget_s,
           double holders_budget_s, size_t groups, size_t per_group,
           py::object roots) -> py::tuple {
            memlens::Guard guard;
            if (!memlens::is_tracking()) throw std::runtime_error("memlens is not tracking");
            return census(guard, std::move(seeds), std::move(frame_locals), std::move(exclude),
                          budget_s, holders_budget_s, groups, per_group, std::move(roots));
        },
        py::arg("seeds"), py::arg("frame_locals"), py::arg("exclude"), py::arg("budget_s"),
        py::arg("holders_budget_s"), py::arg("groups"), py::arg("per_group"),
        py::arg("roots") = py::none(),
        "Live objects reachable from seeds and the running frames' locals by (type, allocating "
        "stack), biggest first, and the "
        "holders of the first `groups` groups: (t_ms, complete, groups, holders_complete, "
        "holders, referenced). With `roots` (a list), referenced is (complete, [(row, count, "
        "bytes)]): the live blocks the roots reach, per stats row (native/reach.h); else None.");

    m.def(
        "object_stacks",
        [](py::list objects) -> std::vector<int32_t> {
            memlens::Guard guard;
            return memlens::object_stacks(guard, objects.ptr());
        },
        py::arg("objects"), "The stack each object was allocated at (-1: not seen).");

    m.def(
        "record_snapshot",
        [](std::string label, int64_t t_ms, bool complete, std::vector<std::string> type_names,
           const py::bytes& objects,
           std::vector<std::tuple<std::string, int32_t, int64_t, int64_t, std::string,
                                  std::vector<std::pair<std::string, int32_t>>>>
               holders,
           std::optional<std::pair<bool, py::bytes>> referenced) {
            memlens::Guard guard;
            std::vector<memlens::ObjectGroupInput> groups;
            for (const auto& g : unpack<4>(objects)) {
                groups.push_back(
                    {static_cast<uint32_t>(g[0]), static_cast<int32_t>(g[1]), g[2], g[3]});
            }
            std::vector<memlens::HolderInput> chains;
            for (auto& [type, stack, count, bytes, root, steps] : holders) {
                chains.push_back(
                    {std::move(type), stack, count, bytes, std::move(root), std::move(steps)});
            }
            std::optional<memlens::ReferencedRecord> marked;
            if (referenced) {
                marked.emplace();
                marked->complete = referenced->first;
                for (const auto& r : unpack<3>(referenced->second)) {
                    marked->rows.push_back({static_cast<uint32_t>(r[0]), r[1], r[2]});
                }
            }
            return memlens::record_snapshot(guard, std::move(label), t_ms, complete, type_names,
                                            groups, chains, std::move(marked));
        },
        py::arg("label"), py::arg("t_ms"), py::arg("complete"), py::arg("type_names"),
        py::arg("groups"), py::arg("holders"), py::arg("referenced") = py::none(),
        "Keep an object snapshot for the capture; False when not tracking.");

    m.def(
        "set_snapshot_handler",
        [](py::object handler) {
            memlens::set_snapshot_handler(handler.is_none() ? nullptr : handler.ptr());
        },
        py::arg("handler"),
        "handler(label) takes a snapshot requested through OUTPUT.snapshot (None: no more).");

    m.def("is_tracking", &memlens::is_tracking, "Whether this process is being tracked.");
    m.def("last_peak", &memlens::last_peak_bytes,
          "The high-watermark of the last session that stopped, in bytes.");

    m.def(
        "walk_stats",
        []() -> py::dict {
            memlens::WalkStats stats;
            {
                memlens::Guard guard;
                stats = memlens::walk_stats(guard);
            }
            py::dict out;
            out["fast"] = stats.fast;
            out["full"] = stats.full;
            out["misses"] = stats.misses;
            out["errors"] = stats.errors;
            out["hook_removals"] = stats.hook_removals;
            out["hooked"] = stats.hooked;
            out["hook_given_up"] = stats.hook_given_up;
            return out;
        },
        "How the current (or last) session's stack walks went: fast, full, misses, errors.");

    m.def(
        "set_thread_name",
        [](uint64_t thread_id, const std::string& name) {
            memlens::Guard guard;
            memlens::set_thread_name(guard, thread_id, name);
        },
        py::arg("thread_id"), py::arg("name"),
        "Name a thread (thread_id = threading.get_ident()) in the capture.");

    m.def(
        "rename_thread",
        [](uint64_t thread_id, const std::string& name) {
            memlens::Guard guard;
            memlens::rename_thread(guard, thread_id, name);
        },
        py::arg("thread_id"), py::arg("name"),
        "A live thread was renamed: its later allocations go under the new name.");
}
