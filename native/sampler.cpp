// The sampler thread, the timeline and checkpoints (sampler.h).
#include "sampler.h"

#include <fcntl.h>
#include <semaphore.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>

#include <algorithm>
#include <cstdio>

#include "clock.h"
#include "objects.h"
#include "threads.h"

namespace memlens {
namespace {

constexpr size_t kMaxTimelinePoints = 4000;
constexpr long kSampleIntervalNs = 10'000'000;  // 10 ms

// Resident set size from /proc/self/statm with plain syscalls (no stdio buffers).
int64_t read_rss() {
    static const long page = sysconf(_SC_PAGESIZE);
    int fd = ::open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return 0;
    }
    char buf[128];
    ssize_t n = ::read(fd, buf, sizeof(buf) - 1);
    ::close(fd);
    if (n <= 0) {
        return 0;
    }
    buf[n] = '\0';
    unsigned long size = 0;
    unsigned long resident = 0;
    if (std::sscanf(buf, "%lu %lu", &size, &resident) != 2) {
        return 0;
    }
    return static_cast<int64_t>(resident) * page;
}

// Halves the timeline: each pair becomes one point with the pair's maxima; later windows are
// twice as long, so the timeline always spans the whole run.
void decimate(Timeline& timeline) {
    size_t half = timeline.t_ms.size() / 2;
    for (size_t i = 0; i < half; ++i) {
        timeline.t_ms[i] = timeline.t_ms[2 * i];
        timeline.t_heap[i] = std::max(timeline.t_heap[2 * i], timeline.t_heap[2 * i + 1]);
        timeline.t_rss[i] = std::max(timeline.t_rss[2 * i], timeline.t_rss[2 * i + 1]);
    }
    timeline.t_ms.resize(half);
    timeline.t_heap.resize(half);
    timeline.t_rss.resize(half);
    timeline.stride *= 2;
}

// Under the lock: when the high-watermark was reached, in ns since start.
int64_t peak_ns(const Aggregate& aggregate) {
    if (aggregate.peak_event() == 0) {
        return 0;
    }
    int64_t elapsed_ticks = ticks() - S.start_ticks;
    int64_t elapsed_ns = monotonic_ns() - S.start_mono_ns;
    if (elapsed_ticks <= 0) {
        return 0;
    }
    double ns_per_tick = static_cast<double>(elapsed_ns) / static_cast<double>(elapsed_ticks);
    return static_cast<int64_t>(static_cast<double>(aggregate.peak_ticks() - S.start_ticks) *
                                ns_per_tick);
}

void write_checkpoint(const Guard& guard) {
    CaptureBytes bytes;
    {
        LockedTables tables(guard, S.tables);
        if (!tracking()) {
            return;
        }
        bytes = encode_session(tables, guard, false, std::nullopt);
    }
    // A failed checkpoint is not fatal: the next one, or the final write, may succeed.
    (void)write_capture(S.output + ".partial", bytes);
}

// Until stop_sampler() wakes it, or the next sample is due.
bool wait_for_next_sample() {
    // A condition variable, not a sleep: stop() wakes the sampler at once.
    pthread_mutex_lock(&S.sampler_mutex);
    timespec until{};
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_nsec += kSampleIntervalNs;
    if (until.tv_nsec >= 1'000'000'000) {
        until.tv_sec += 1;
        until.tv_nsec -= 1'000'000'000;
    }
    while (!S.sampler_stop.load() &&
           pthread_cond_timedwait(&S.sampler_wake, &S.sampler_mutex, &until) == 0) {
    }
    pthread_mutex_unlock(&S.sampler_mutex);
    return !S.sampler_stop.load();
}

// When the next checkpoint is due. The first at the first sample, then at 50, 100, 200, ... ms
// up to the interval: a program that crashes in its first second still leaves a capture that
// names it and what it had allocated. And never sooner than kCostMultiple times the last
// checkpoint took: a checkpoint holds the tables' lock while it encodes (every allocating
// thread waits), then deflates and writes on a core of its own, and both grow with the capture
// (the recursion bench's 300,000 rows: ~25 ms locked, ~55 in all): checkpoints then cost the
// program at most ~5% of its time however big the capture grows. The whole checkpoint is timed,
// not only its locked part: the rest is CPU the program pays for too (user+sys, or a core on a
// busy machine). Wall time, so a sampler slowed by load also checkpoints less often.
class CheckpointSchedule {
  public:
    static constexpr int64_t kCostMultiple = 19;  // 1 part in 20

    explicit CheckpointSchedule(int64_t interval_ns)
        : interval_ns_(interval_ns), gap_ns_(std::min<int64_t>(interval_ns, 50'000'000)) {}

    [[nodiscard]] bool due(int64_t now_ns) const { return interval_ns_ > 0 && now_ns >= next_ns_; }

    // A checkpoint ran from started_ns to finished_ns.
    void written(int64_t started_ns, int64_t finished_ns) {
        int64_t cost_ns = finished_ns - started_ns;
        next_ns_ = finished_ns + std::max(gap_ns_, kCostMultiple * cost_ns);
        gap_ns_ = std::min(interval_ns_, 2 * gap_ns_);
    }

  private:
    int64_t interval_ns_;
    int64_t gap_ns_;
    int64_t next_ns_ = 0;  // the first is due at once
};

void* sampler_main(void* started) {
    Guard guard;  // for its whole life: nothing this thread allocates is the program's
    // Named here, by the thread: until it runs, glibc has it block every signal (a creator's
    // name would show it so). Then its creator may return from start().
    pthread_setname_np(pthread_self(), "memlens-sampler");
    sem_post(static_cast<sem_t*>(started));
    CheckpointSchedule checkpoints(static_cast<int64_t>(S.options.checkpoint_interval * 1e9));
    // Built once: the poll below runs every sample.
    const std::string snapshot_request = S.output.empty() ? "" : S.output + ".snapshot";
    while (wait_for_next_sample()) {
        take_sample(guard);
        poll_snapshot_request(guard, snapshot_request);
        refresh_thread_names(guard);
        if (S.flush_requested.load() && !S.flush_done.load()) {
            if (!S.output.empty()) {
                write_checkpoint(guard);
            }
            S.flush_done.store(true);
        }
        int64_t now_ns = monotonic_ns();
        if (!S.output.empty() && checkpoints.due(now_ns)) {
            write_checkpoint(guard);
            checkpoints.written(now_ns, monotonic_ns());
        }
    }
    return nullptr;
}

// --- crash flush -----------------------------------------------------------------------------
// On SIGSEGV, SIGBUS, SIGFPE, SIGILL and SIGABRT the crashing thread cannot encode a capture
// (it may hold the tables' lock or malloc's, and little is async-signal-safe). So its handler
// only raises a flag and sleeps (both async-signal-safe) while the sampler thread, which polls
// every 10 ms, writes a last checkpoint; after at most a second (the sampler may be blocked by
// a lock the crashed thread holds) the signal's default action kills the process as before.
constexpr int kFatalSignals[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT};
struct sigaction g_previous[sizeof(kFatalSignals) / sizeof(kFatalSignals[0])];
bool g_installed[sizeof(kFatalSignals) / sizeof(kFatalSignals[0])];

void on_fatal_signal(int signum) {
    int saved_errno = errno;
    if (!S.flush_requested.exchange(true) && S.sampler_running) {
        for (int waited = 0; waited < 100 && !S.flush_done.load(); ++waited) {
            timespec pause{0, 10'000'000};
            nanosleep(&pause, nullptr);
        }
    }
    // SA_RESETHAND put the default action back: a fault re-executes and dies of it, abort()
    // raises again; raising here covers a signal sent by kill().
    errno = saved_errno;
    raise(signum);
}

}  // namespace

void take_sample(const Guard& guard) {
    int64_t rss = read_rss();
    int64_t now_ms = (monotonic_ns() - S.start_mono_ns) / 1'000'000;
    int64_t heap = S.tables.unlocked_view().aggregate.heap_now();
    LockedTimeline timeline(guard, S.timeline);
    timeline->rss_peak = std::max(timeline->rss_peak, rss);
    timeline->window_heap = std::max(timeline->window_heap, heap);
    timeline->window_rss = std::max(timeline->window_rss, rss);
    if (++timeline->in_window < timeline->stride) {
        return;
    }
    timeline->t_ms.push_back(now_ms);
    timeline->t_heap.push_back(timeline->window_heap);
    timeline->t_rss.push_back(timeline->window_rss);
    timeline->in_window = 0;
    timeline->window_heap = 0;
    timeline->window_rss = 0;
    if (timeline->t_ms.size() >= kMaxTimelinePoints) {
        decimate(*timeline);
    }
}

CaptureBytes encode_session(const LockedTables& tables, const Guard& guard, bool complete,
                            std::optional<int> exit_code) {
    LockedTimeline timeline(guard, S.timeline);  // always taken after the tables' lock
    S.meta.end_ns = wall_ns();
    if (exit_code) {
        S.meta.exit_code = *exit_code;
    }
    const Aggregate& aggregate = tables->aggregate;
    CaptureView view;
    view.complete = complete;
    view.meta = &S.meta;
    view.strings = &tables->interning.strings();
    view.frames = &tables->interning.frames();
    view.stacks = &tables->interning.nodes();
    view.stats_count = aggregate.row_count();
    view.stats_row = [&aggregate](size_t i) { return aggregate.stats_row(i); };
    view.sizes = aggregate.sizes();
    view.allocators = aggregate.allocators();
    view.totals = {aggregate.alloc_count(), aggregate.alloc_bytes(), aggregate.peak(),
                   peak_ns(aggregate),      aggregate.heap(),        timeline->rss_peak};
    view.timeline_t_ms = &timeline->t_ms;
    view.timeline_heap = &timeline->t_heap;
    view.timeline_rss = &timeline->t_rss;
    view.snapshots = &tables->snapshots;
    view.threads.reserve(tables->threads.size());
    for (size_t i = 0; i < tables->threads.size(); ++i) {
        view.threads.push_back({static_cast<uint32_t>(i), tables->threads[i].name});
    }
    return encode_capture(view);
}

void install_crash_flush() {
    S.flush_requested.store(false);
    S.flush_done.store(false);
    for (size_t i = 0; i < sizeof(kFatalSignals) / sizeof(kFatalSignals[0]); ++i) {
        struct sigaction current {};
        // Only where the program left the default: its own handler (faulthandler's) stays.
        g_installed[i] = sigaction(kFatalSignals[i], nullptr, &current) == 0 &&
                         current.sa_handler == SIG_DFL && !(current.sa_flags & SA_SIGINFO);
        if (g_installed[i]) {
            struct sigaction ours {};
            ours.sa_handler = on_fatal_signal;
            sigemptyset(&ours.sa_mask);
            ours.sa_flags = SA_RESETHAND | SA_NODEFER;
            g_installed[i] = sigaction(kFatalSignals[i], &ours, &g_previous[i]) == 0;
        }
    }
}

void uninstall_crash_flush() {
    for (size_t i = 0; i < sizeof(kFatalSignals) / sizeof(kFatalSignals[0]); ++i) {
        struct sigaction current {};
        // Still ours (not replaced by the program since): back to what it was.
        if (g_installed[i] && sigaction(kFatalSignals[i], nullptr, &current) == 0 &&
            current.sa_handler == on_fatal_signal) {
            sigaction(kFatalSignals[i], &g_previous[i], nullptr);
        }
        g_installed[i] = false;
    }
}

void start_sampler(const Guard&) {
    // Fresh each time: a forked child must not inherit them in a locked or waited-on state.
    pthread_mutex_init(&S.sampler_mutex, nullptr);
    pthread_condattr_t attributes;
    pthread_condattr_init(&attributes);
    pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC);
    pthread_cond_init(&S.sampler_wake, &attributes);
    pthread_condattr_destroy(&attributes);
    S.sampler_stop.store(false);
    // The sampler takes no signal meant for the program: a SIGTERM or SIGINT the kernel gave
    // to it would wake no Python thread, and a main thread in time.sleep() would sleep on (plain
    // python has no other thread to give it to). It inherits this mask; faults stay deliverable.
    sigset_t blocked, previous;
    sigfillset(&blocked);
    for (int fault : {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGSYS}) {
        sigdelset(&blocked, fault);
    }
    pthread_sigmask(SIG_BLOCK, &blocked, &previous);
    sem_t started;
    sem_init(&started, 0, 0);
    S.sampler_running = pthread_create(&S.sampler, nullptr, sampler_main, &started) == 0;
    if (S.sampler_running) {
        // When start() returns, the thread has its name (ps, top, gdb) and its mask.
        while (sem_wait(&started) != 0 && errno == EINTR) {
        }
    }
    sem_destroy(&started);
    pthread_sigmask(SIG_SETMASK, &previous, nullptr);
}

void stop_sampler(const Guard&) {
    if (S.sampler_running) {
        pthread_mutex_lock(&S.sampler_mutex);
        S.sampler_stop.store(true);
        pthread_cond_signal(&S.sampler_wake);
        pthread_mutex_unlock(&S.sampler_mutex);
        pthread_join(S.sampler, nullptr);
        S.sampler_running = false;
    }
}

}  // namespace memlens
