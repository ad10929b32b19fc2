#include "support/process.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

namespace podlb::testing {

std::string PodlbBinary() {
  const char* p = std::getenv("PODLB_BINARY");
  return p ? p : "build/podlb";
}

std::string SourceDir() {
  const char* p = std::getenv("PODLB_SOURCE_DIR");
  return p ? p : ".";
}

namespace {

::podlb::ChildOptions TestChildOptions(std::vector<std::string> extra_env, bool capture_stderr) {
  return {.capture_stderr = capture_stderr,
          .env = std::move(extra_env),
          .own_process_group = true,
          .parent_death_signal = SIGKILL};
}

}  // namespace

ChildProcess::ChildProcess(std::vector<std::string> argv, std::vector<std::string> extra_env) {
  std::string command = argv.empty() ? "" : argv[0];
  auto status = child_.Start(std::move(argv), TestChildOptions(std::move(extra_env), false));
  if (!status.ok()) {
    fprintf(stderr, "cannot start %s: %s\n", command.c_str(), status.ToString().c_str());
    abort();
  }
  pid_ = child_.pid();
}

ChildProcess::~ChildProcess() { Terminate(); }

::testing::AssertionResult ChildProcess::WaitForLine(
    const std::function<bool(const std::string&)>& match, std::chrono::milliseconds timeout) {
  if (child_.WaitForLine(match, timeout)) return ::testing::AssertionSuccess();
  std::vector<std::string> lines = child_.Lines();
  std::string tail;
  size_t from = lines.size() > 20 ? lines.size() - 20 : 0;
  for (size_t i = from; i < lines.size(); ++i) tail += "\n  | " + lines[i];
  return ::testing::AssertionFailure()
         << (child_.WaitForExit(std::chrono::milliseconds(0)) ? "process closed stdout"
                                                               : "timed out")
         << " before the expected line; last lines:" << tail;
}

::testing::AssertionResult ChildProcess::WaitForLineContaining(const std::string& needle,
                                                                std::chrono::milliseconds timeout) {
  return WaitForLine([&](const std::string& l) { return l.find(needle) != std::string::npos; },
                     timeout);
}

int ChildProcess::Terminate(std::chrono::milliseconds timeout) {
  child_.Stop(timeout);
  return ExitCode(child_.wait_status());
}

int ChildProcess::WaitExit(std::chrono::milliseconds timeout) {
  if (!child_.Reap(timeout)) return -1000;
  return ExitCode(child_.wait_status());
}

int RunCommand(const std::vector<std::string>& argv, std::string* output,
               std::chrono::milliseconds timeout, std::vector<std::string> extra_env) {
  auto result = ::podlb::RunCommand(argv, TestChildOptions(std::move(extra_env), true), timeout);
  if (!result.ok()) {
    if (output != nullptr) *output = result.status().ToString();
    return -1;
  }
  if (output != nullptr) {
    *output = std::move(result->output);
    if (result->timed_out) *output += "\n[killed after timeout]";
  }
  return ExitCode(result->wait_status);
}

TempDir::TempDir() {
  std::string tmpl = (std::filesystem::temp_directory_path() / "podlb-test-XXXXXX").string();
  path_ = mkdtemp(tmpl.data());
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

::testing::AssertionResult WaitFor(const std::function<bool()>& condition,
                                   std::chrono::milliseconds timeout, const std::string& what) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!condition()) {
    if (std::chrono::steady_clock::now() > deadline)
      return ::testing::AssertionFailure() << "timed out waiting for " << what;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return ::testing::AssertionSuccess();
}

int PickFreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return ntohs(addr.sin_port);
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void WriteFile(const std::string& path, const std::string& content) {
  std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp);
    out << content;
  }
  std::filesystem::rename(tmp, path);
}

}  // namespace podlb::testing
