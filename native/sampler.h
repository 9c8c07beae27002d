// The sampler thread and checkpoints: every 10 ms a timeline point (t, heap, RSS), the threads'
// OS names, and every checkpoint interval the capture so far, written to CAP.partial. Also the
// encoding of a capture from the tables, shared by checkpoints, snapshots and the final write.
#pragma once

#include <optional>
#include <string>

#include "state.h"

namespace memlens {

// One timeline point (kept or folded into the current window).
void take_sample(const Guard&);
// Under the tables' lock: the capture as of now.
[[nodiscard]] CaptureBytes encode_session(const LockedTables& tables, const Guard& guard,
                                          bool complete, std::optional<int> exit_code);
void start_sampler(const Guard&);
void stop_sampler(const Guard&);
// A last checkpoint on a fatal signal (SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT), where the
// program left that signal at its default; the signal then kills the process as before.
void install_crash_flush();
void uninstall_crash_flush();

}  // namespace memlens
