// Threads: per-thread state and the threads table with names (threads.h).
#include "threads.h"

#include <fcntl.h>
#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>

#include "walk.h"

namespace memlens {

__thread ThreadState* t_state __attribute__((tls_model("initial-exec"))) = nullptr;

namespace {

pthread_key_t g_thread_key;
std::string g_process_name;  // the main thread's OS name at start: what threads inherit

constexpr size_t kOsNameSize = 16;  // the kernel's TASK_COMM_LEN

void free_frame_buffers(ThreadState* ts) {
    std::free(ts->pos);
    std::free(ts->frames);
    std::free(ts->nodes);
    std::free(ts->walk_pos);
    std::free(ts->walk_frames);
    std::free(ts->top);
}

void mark_thread_gone(void* arg) {
    Guard guard;
    auto* ts = static_cast<ThreadState*>(arg);
    {
        LockedTables tables(guard, S.tables);
        if (ts->session == tables->session && ts->thread_index < tables->threads.size()) {
            tables->threads[ts->thread_index].alive = false;
        }
    }
    t_state = nullptr;
    free_frame_buffers(ts);
    std::free(ts);
}

// The OS name of a thread of this process, "" if it cannot be read. Plain syscalls: no stdio.
std::string read_os_name(pid_t tid) {
    char path[64];
    std::snprintf(path, sizeof(path), "/proc/self/task/%d/comm", static_cast<int>(tid));
    int fd = ::open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return {};
    }
    char buf[kOsNameSize + 1];
    ssize_t n = ::read(fd, buf, kOsNameSize);
    ::close(fd);
    if (n <= 0) {
        return {};
    }
    while (n > 0 && buf[n - 1] == '\n') {
        --n;
    }
    return std::string(buf, static_cast<size_t>(n));
}

pid_t current_tid() { return static_cast<pid_t>(syscall(SYS_gettid)); }

// The calling thread's OS name (prctl PR_GET_NAME: one syscall, once per thread and session).
std::string own_os_name() {
    char name[kOsNameSize] = {};
    if (pthread_getname_np(pthread_self(), name, sizeof(name)) != 0) {
        return {};
    }
    return name;
}

// Under the lock: a new entry for the calling thread.
uint32_t register_thread(Tables& tables) {
    auto id = static_cast<uint64_t>(pthread_self());
    for (size_t i = tables.threads.size(); i-- > 0;) {
        ThreadEntry& t = tables.threads[i];
        if (t.id == id && !t.bound && t.alive) {
            t.bound = true;
            t.tid = current_tid();
            t.os_name = own_os_name();
            return static_cast<uint32_t>(i);
        }
    }
    auto index = static_cast<uint32_t>(tables.threads.size());
    pid_t tid = current_tid();
    std::string os_name = own_os_name();
    bool os_named = !os_name.empty() && os_name != g_process_name && tid != getpid();
    std::string name = tid == getpid() ? "MainThread"
                       : os_named      ? os_name
                                       : "Thread-" + std::to_string(index);
    tables.threads.push_back({id, tid, std::move(name), os_name, true, true, -1, os_named});
    return index;
}

}  // namespace

void init_threads() { pthread_key_create(&g_thread_key, mark_thread_gone); }

ThreadState* new_thread_state(const Guard&) {
    auto* ts = static_cast<ThreadState*>(std::calloc(1, sizeof(ThreadState)));
    if (ts == nullptr) {
        return nullptr;
    }
    if (!grow_thread_state(ts, 64)) {
        free_frame_buffers(ts);
        std::free(ts);
        return nullptr;
    }
    ts->base = -1;
    t_state = ts;
    pthread_setspecific(g_thread_key, ts);
    return ts;
}

void bind_thread(const LockedTables& locked, ThreadState* ts) noexcept {
    Tables& tables = *locked;
    if (ts->session != tables.session) {
        ts->session = tables.session;
        ts->depth = 0;
        ts->window = TemporaryWindow(tables.temporary_threshold);
        for (RowCacheEntry& entry : ts->row_cache) {
            entry = {INT32_MIN, {kNoRow, kNoRow, kNoRow}};
        }
        std::memset(ts->leaf_cache, 0, sizeof(ts->leaf_cache));
        ts->starting_thread = static_cast<uint64_t>(pthread_self()) == tables.root.thread_id;
        ts->thread_index = register_thread(tables);
        ts->names_epoch = tables.names_epoch;
        return;
    }
    if (ts->names_epoch == tables.names_epoch) {
        return;
    }
    ts->names_epoch = tables.names_epoch;
    uint32_t index = ts->thread_index;
    while (index < tables.threads.size() && tables.threads[index].renamed_to >= 0) {
        index = static_cast<uint32_t>(tables.threads[index].renamed_to);
    }
    if (index != ts->thread_index) {
        // Renamed: from now on its allocations go to the new entry's rows.
        ts->thread_index = index;
        for (RowCacheEntry& entry : ts->row_cache) {
            entry = {INT32_MIN, {kNoRow, kNoRow, kNoRow}};
        }
    }
}

void reset_thread_names() { g_process_name = read_os_name(getpid()); }

namespace {

// Under the lock: the live entry at index is renamed; a new entry takes over, so that what its
// thread allocated before keeps the old name. The thread follows at its next allocation
// (bind_thread sees names_epoch move).
void hand_over_entry(Tables& tables, size_t index, ThreadEntry renamed) {
    tables.threads[index].renamed_to = static_cast<int32_t>(tables.threads.size());
    tables.threads[index].alive = false;
    tables.threads.push_back(std::move(renamed));
    tables.names_epoch += 1;
}

// Under the lock: the entry's thread now has another OS name.
void rename_entry(Tables& tables, size_t index, const std::string& os_name) {
    if (index >= tables.threads.size() || !tables.threads[index].alive ||
        tables.threads[index].renamed_to >= 0 || tables.threads[index].os_name == os_name) {
        return;
    }
    ThreadEntry renamed = tables.threads[index];
    renamed.name = os_name;
    renamed.os_name = os_name;
    renamed.os_named = true;
    hand_over_entry(tables, index, std::move(renamed));
}

struct LiveThread {
    size_t index;
    pid_t tid;
    std::string os_name;  // as last read; then as read now
};

std::vector<LiveThread> live_threads(const Tables& tables, uint64_t only_id) {
    std::vector<LiveThread> live;
    for (size_t i = 0; i < tables.threads.size(); ++i) {
        const ThreadEntry& t = tables.threads[i];
        if (t.alive && t.bound && t.tid != 0 && t.renamed_to < 0 &&
            (only_id == 0 || t.id == only_id)) {
            live.push_back({i, t.tid, t.os_name});
        }
    }
    return live;
}

// The OS names of these threads now (outside the lock: three syscalls each), then their
// renames (under it).
void apply_renames(const Guard& guard, std::vector<LiveThread> live) {
    for (LiveThread& thread : live) {
        std::string now = read_os_name(thread.tid);
        thread.os_name = now.empty() ? thread.os_name : now;
    }
    LockedTables tables(guard, S.tables);
    for (const LiveThread& thread : live) {
        rename_entry(*tables, thread.index, thread.os_name);
    }
}

}  // namespace

void refresh_thread_names(const Guard& guard) {
    std::vector<LiveThread> live;
    {
        LockedTables tables(guard, S.tables);
        live = live_threads(*tables, 0);
    }
    apply_renames(guard, std::move(live));
}

void record_thread_rename(const Guard& guard, uint64_t thread_id) noexcept {
    // No exception may cross a hook into C code (only bad_alloc can happen here).
    try {
        std::vector<LiveThread> live;
        {
            LockedTables tables(guard, S.tables);
            live = live_threads(*tables, thread_id);
        }
        apply_renames(guard, std::move(live));
    } catch (...) {
        return;
    }
}

void set_thread_name(const Guard& guard, uint64_t thread_id, const std::string& name) {
    LockedTables tables(guard, S.tables);
    if (!tracking()) {
        return;
    }
    // The live thread with this id; else the latest that had it (named after it ended). A name
    // the thread gave itself through the OS is kept.
    ThreadEntry* latest = nullptr;
    for (size_t i = tables->threads.size(); i-- > 0;) {
        ThreadEntry& t = tables->threads[i];
        if (t.id == thread_id && t.alive) {
            if (!t.os_named) t.name = name;
            return;
        }
        if (t.id == thread_id && latest == nullptr) {
            latest = &t;
        }
    }
    if (latest != nullptr) {
        if (!latest->os_named) latest->name = name;
        return;
    }
    tables->threads.push_back({thread_id, 0, name, "", false, true, -1, false});
}

void rename_thread(const Guard& guard, uint64_t thread_id, const std::string& name) {
    LockedTables tables(guard, S.tables);
    if (!tracking()) {
        return;
    }
    for (size_t i = tables->threads.size(); i-- > 0;) {
        ThreadEntry& t = tables->threads[i];
        if (t.id != thread_id || !t.alive) {
            continue;
        }
        if (!t.bound) {
            t.name = name;  // nothing allocated under the old name yet
        } else if (t.name != name) {
            ThreadEntry renamed = t;
            renamed.name = name;
            renamed.os_named = false;  // named by Python: its name at stop is this one
            hand_over_entry(*tables, i, std::move(renamed));
        }
        return;
    }
}

}  // namespace memlens

extern "C" size_t memlens_thread_stack_size(void) {
    memlens::Guard guard;  // reading the main thread's attributes opens /proc/self/maps
    pthread_attr_t attributes;
    if (pthread_getattr_np(pthread_self(), &attributes) != 0) {
        return 0;
    }
    void* low = nullptr;
    size_t size = 0;
    if (pthread_attr_getstack(&attributes, &low, &size) != 0) {
        size = 0;
    }
    pthread_attr_destroy(&attributes);
    return size;
}
