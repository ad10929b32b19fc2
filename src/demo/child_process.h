// ChildProcess: a podlb component (control plane, proxy) or other program the demo runs beside
// the cluster: stdout (and, if asked, stderr) read line by line on a thread, and the child dies
// with the demo (PR_SET_PDEATHSIG). Construct, WaitForLine, Running, Signal and Stop from one
// control thread at a time (callers that signal from another thread serialize themselves).
#pragma once

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

namespace podlb::demo {

struct ChildOptions {
  // Read stderr into the lines too (programs that log there, as dnsmasq does); otherwise it
  // passes through to the demo's stderr.
  bool capture_stderr = false;
  // NAME=VALUE entries that replace or extend the demo's environment for the child.
  std::vector<std::string> env;
};

class ChildProcess {
 public:
  ChildProcess() = default;
  ~ChildProcess();  // Stop
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  absl::Status Start(std::vector<std::string> argv, const ChildOptions& options = {});
  // The first stdout line (seen so far or arriving) that `match` accepts; nullopt if the child
  // exits or `timeout` passes first.
  std::optional<std::string> WaitForLine(const std::function<bool(const std::string&)>& match,
                                         std::chrono::milliseconds timeout);
  // True once the child closed its output (it exited), waiting up to `timeout` for that.
  bool WaitForExit(std::chrono::milliseconds timeout);
  // Every line read so far.
  std::vector<std::string> Lines();
  // Whether the child still runs. Reaps it if it exited; wait_status() then says how.
  bool Running();
  // The waitpid status of a reaped child; -1 while it runs or was never started.
  int wait_status() const { return wait_status_; }
  void Signal(int signal);
  // SIGTERM, then SIGKILL after `timeout`; reaps the child.
  void Stop(std::chrono::milliseconds timeout = std::chrono::seconds(5));

 private:
  friend absl::StatusOr<std::string> RunAndCapture(std::vector<std::string> argv);
  void ReadLoop(int fd);

  pid_t pid_ = -1;
  int wait_status_ = -1;
  std::thread reader_;
  absl::Mutex mu_;
  std::vector<std::string> lines_ ABSL_GUARDED_BY(mu_);
  bool eof_ ABSL_GUARDED_BY(mu_) = false;
};

// "exited with status 2", "killed by signal 9": for error messages about a reaped child.
std::string DescribeWaitStatus(int wait_status);

// Runs `argv` to completion and returns its stdout, or an error with its exit status.
absl::StatusOr<std::string> RunAndCapture(std::vector<std::string> argv);

}  // namespace podlb::demo
