// ChildProcess: a podlb component (control plane, proxy) or other program the demo runs beside
// the cluster: stdout read line by line on a thread, stderr passed through, and the child dies
// with the demo (PR_SET_PDEATHSIG). Construct, WaitForLine and Stop from one control thread.
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

class ChildProcess {
 public:
  ChildProcess() = default;
  ~ChildProcess();  // Stop
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  absl::Status Start(std::vector<std::string> argv);
  // The first stdout line (seen so far or arriving) that `match` accepts; nullopt if the child
  // exits or `timeout` passes first.
  std::optional<std::string> WaitForLine(const std::function<bool(const std::string&)>& match,
                                         std::chrono::milliseconds timeout);
  // SIGTERM, then SIGKILL after `timeout`; reaps the child.
  void Stop(std::chrono::milliseconds timeout = std::chrono::seconds(5));

 private:
  friend absl::StatusOr<std::string> RunAndCapture(std::vector<std::string> argv);
  void ReadLoop(int fd);

  pid_t pid_ = -1;
  std::thread reader_;
  absl::Mutex mu_;
  std::vector<std::string> lines_ ABSL_GUARDED_BY(mu_);
  bool eof_ ABSL_GUARDED_BY(mu_) = false;
};

// Runs `argv` to completion and returns its stdout, or an error with its exit status.
absl::StatusOr<std::string> RunAndCapture(std::vector<std::string> argv);

}  // namespace podlb::demo
