// Test helpers for integration tests that run real processes on loopback: a child process with
// captured stdout lines, a temporary directory, and WaitFor helpers that wait on an event with a
// deadline instead of sleeping. Used from the test's main thread.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "process/child_process.h"

namespace podlb::testing {

// Path of the podlb binary under test ($PODLB_BINARY, set by ctest).
std::string PodlbBinary();
std::string SourceDir();

// A test's child process: podlb::ChildProcess (src/process) started at construction in a
// process group of its own (Terminate reaches the helpers it starts) that dies with the test
// binary, with waits that report as gtest assertions. stderr passes through to the test's.
// Killed (SIGTERM, then SIGKILL) and reaped on destruction.
class ChildProcess {
 public:
  explicit ChildProcess(std::vector<std::string> argv, std::vector<std::string> extra_env = {});
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  pid_t pid() const { return pid_; }
  // Waits until some stdout line satisfies `match`. Lines already seen count.
  [[nodiscard]] ::testing::AssertionResult WaitForLine(
      const std::function<bool(const std::string&)>& match, std::chrono::milliseconds timeout);
  [[nodiscard]] ::testing::AssertionResult WaitForLineContaining(
      const std::string& needle, std::chrono::milliseconds timeout);
  std::vector<std::string> Lines() const { return child_.Lines(); }
  // Sends SIGTERM and waits for exit; returns the exit status (or -signal).
  int Terminate(std::chrono::milliseconds timeout = std::chrono::seconds(10));
  // Waits for the process to exit by itself; returns the exit code or -signal, or -1000 on timeout.
  int WaitExit(std::chrono::milliseconds timeout);

 private:
  ::podlb::ChildProcess child_;
  pid_t pid_ = -1;  // kept after the child was reaped, for messages and signals
};

// Runs a command to completion; returns its exit code (or -signal) and fills `output` with
// stdout+stderr.
int RunCommand(const std::vector<std::string>& argv, std::string* output,
               std::chrono::milliseconds timeout = std::chrono::seconds(60),
               std::vector<std::string> extra_env = {});

// A fresh directory under $TMPDIR, removed on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Polls `condition` (cheap, side-effect free) until it holds or `timeout` passes. For state that
// has no event to wait on (a file appearing, a counter reaching N in another process).
[[nodiscard]] ::testing::AssertionResult WaitFor(const std::function<bool()>& condition,
                                                 std::chrono::milliseconds timeout,
                                                 const std::string& what);

// A TCP port on 127.0.0.1 that was free a moment ago (bind to port 0, read it, close).
int PickFreePort();

std::string ReadFile(const std::string& path);
void WriteFile(const std::string& path, const std::string& content);

}  // namespace podlb::testing
