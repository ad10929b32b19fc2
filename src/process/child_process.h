// ChildProcess: a program podlb runs beside itself — the demo's helpers (control plane, proxy,
// dnsmasq) and the integration tests' podlb, sandbox, kubectl and python processes. Its stdout
// (and, if asked, stderr) is read line by line on a thread; the child dies with its parent
// (PR_SET_PDEATHSIG), and waits for its exit are waits on the exit itself (a pidfd), not polls.
// Construct, Start, the Wait* calls, Running, Signal and Stop from one control thread at a time;
// Lines() and WaitForLine from any thread.
#pragma once

#include <signal.h>
#include <sys/types.h>

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"

namespace podlb {

struct ChildOptions {
  // Read stderr into the lines too (programs that log there, as dnsmasq does); otherwise it
  // passes through to the parent's stderr.
  bool capture_stderr = false;
  // NAME=VALUE entries that replace or extend the parent's environment for the child.
  std::vector<std::string> env;
  // The child leads a process group of its own, and Signal/Stop reach the whole group: helpers
  // it starts (a sandbox's pods, kubectl's plugins) go with it.
  bool own_process_group = false;
  // What the child gets when the parent dies: SIGTERM lets it clean up; SIGKILL for a test
  // binary that crashed, so no orphan keeps ctest's pipes open.
  int parent_death_signal = SIGTERM;
  // false: the child's environment is exactly `env` (a container's, not the parent's).
  bool inherit_env = true;
  // Set: stdout and stderr are appended to this file (created if missing) instead of being read
  // into Lines(): a long-running child (a sandbox pod) whose output must not grow in memory.
  std::string output_path;
  // Set: the child's working directory.
  std::string working_dir;
};

class ChildProcess {
 public:
  ChildProcess() = default;
  ~ChildProcess();  // Stop
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  // Starts `argv` (argv[0] looked up in PATH); stdin is /dev/null. Once per object.
  absl::Status Start(std::vector<std::string> argv, const ChildOptions& options = {});
  // The child's pid; -1 before Start and once it was reaped.
  pid_t pid() const { return pid_; }
  // The first line (seen so far or arriving) that `match` accepts; nullopt if the child closes
  // its output or `timeout` passes first.
  std::optional<std::string> WaitForLine(const std::function<bool(const std::string&)>& match,
                                         std::chrono::milliseconds timeout);
  // True once the child closed its output (it exited), waiting up to `timeout` for that.
  bool WaitForExit(std::chrono::milliseconds timeout);
  // Waits up to `timeout` for the child to exit by itself and reaps it; false if it still runs.
  bool Reap(std::chrono::milliseconds timeout);
  // Every line read so far; a last line without its newline counts once output ended.
  std::vector<std::string> Lines() const;
  // The output as it was written (lines with their newlines).
  std::string Output() const;
  // Whether the child still runs. Reaps it if it exited; wait_status() then says how.
  bool Running();
  // The waitpid status of a reaped child; -1 while it runs or was never started.
  int wait_status() const { return wait_status_; }
  void Signal(int signal);
  // SIGTERM, then SIGKILL after `timeout`; reaps the child and waits for its output to end.
  void Stop(std::chrono::milliseconds timeout = std::chrono::seconds(5));

 private:
  void ReadLoop(int fd);
  void Kill(int signal);

  pid_t pid_ = -1;
  bool own_process_group_ = false;
  bool output_to_file_ = false;  // ChildOptions::output_path: no reader thread
  int wait_status_ = -1;
  std::thread reader_;
  mutable absl::Mutex mu_;
  std::vector<std::string> lines_ ABSL_GUARDED_BY(mu_);
  bool last_line_complete_ ABSL_GUARDED_BY(mu_) = true;
  bool eof_ ABSL_GUARDED_BY(mu_) = false;
};

// "exited with status 2", "killed by signal 9": for error messages about a reaped child.
std::string DescribeWaitStatus(int wait_status);
// The exit code, or minus the signal that killed it; -1 when unknown.
int ExitCode(int wait_status);

struct CommandResult {
  int wait_status = -1;
  std::string output;      // stdout (and stderr, with capture_stderr)
  bool timed_out = false;  // killed after the timeout
};
// Runs `argv` to completion (killing it after `timeout`).
absl::StatusOr<CommandResult> RunCommand(std::vector<std::string> argv, const ChildOptions& options,
                                         std::chrono::milliseconds timeout);
// Runs `argv` to completion and returns its stdout, or an error with its exit status.
absl::StatusOr<std::string> RunAndCapture(std::vector<std::string> argv);

}  // namespace podlb
