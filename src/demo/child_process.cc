#include "demo/child_process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace podlb::demo {
namespace {

// In the child after fork: dies with the parent, and gets the signals the CLI blocks back.
[[noreturn]] void ExecChild(std::vector<std::string>& argv, int stdout_fd) {
  prctl(PR_SET_PDEATHSIG, SIGTERM);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  signal(SIGPIPE, SIG_DFL);
  dup2(stdout_fd, STDOUT_FILENO);
  std::vector<char*> args;
  for (auto& a : argv) args.push_back(a.data());
  args.push_back(nullptr);
  execvp(args[0], args.data());
  _exit(127);
}

}  // namespace

ChildProcess::~ChildProcess() { Stop(); }

absl::Status ChildProcess::Start(std::vector<std::string> argv) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return absl::InternalError("demo: pipe failed");
  pid_t pid = fork();
  if (pid < 0) return absl::InternalError("demo: fork failed");
  if (pid == 0) ExecChild(argv, fds[1]);
  close(fds[1]);
  pid_ = pid;
  reader_ = std::thread([this, fd = fds[0]] { ReadLoop(fd); });
  return absl::OkStatus();
}

void ChildProcess::ReadLoop(int fd) {
  std::string partial;
  char buffer[4096];
  while (true) {
    ssize_t n = read(fd, buffer, sizeof(buffer));
    if (n <= 0) break;
    partial.append(buffer, static_cast<size_t>(n));
    size_t newline;
    while ((newline = partial.find('\n')) != std::string::npos) {
      absl::MutexLock lock(&mu_);
      lines_.push_back(partial.substr(0, newline));
      partial.erase(0, newline + 1);
    }
  }
  close(fd);
  absl::MutexLock lock(&mu_);
  eof_ = true;
}

std::optional<std::string> ChildProcess::WaitForLine(
    const std::function<bool(const std::string&)>& match, std::chrono::milliseconds timeout) {
  size_t checked = 0;
  std::optional<std::string> found;
  auto done = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    for (; checked < lines_.size(); ++checked) {
      if (match(lines_[checked])) {
        found = lines_[checked];
        return true;
      }
    }
    return eof_;
  };
  absl::MutexLock lock(&mu_);
  mu_.AwaitWithTimeout(absl::Condition(&done), absl::FromChrono(timeout));
  return found;
}

void ChildProcess::Stop(std::chrono::milliseconds timeout) {
  if (pid_ > 0) {
    kill(pid_, SIGTERM);
    auto deadline = std::chrono::steady_clock::now() + timeout;
    int status = 0;
    while (waitpid(pid_, &status, WNOHANG) == 0) {
      if (std::chrono::steady_clock::now() > deadline) {
        kill(pid_, SIGKILL);
        waitpid(pid_, &status, 0);
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    pid_ = -1;
  }
  if (reader_.joinable()) reader_.join();
}

absl::StatusOr<std::string> RunAndCapture(std::vector<std::string> argv) {
  ChildProcess child;
  std::string command = absl::StrJoin(argv, " ");
  if (auto status = child.Start(argv); !status.ok()) return status;
  // The reader collects every line until the child closes stdout (it exited).
  child.WaitForLine([](const std::string&) { return false; }, std::chrono::seconds(30));
  std::string out;
  {
    absl::MutexLock lock(&child.mu_);
    out = absl::StrJoin(child.lines_, "\n");
  }
  int status = 0;
  waitpid(child.pid_, &status, 0);
  child.pid_ = -1;
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    return absl::UnknownError(absl::StrCat("demo: `", command, "` failed (status ", status, ")"));
  }
  return out;
}

}  // namespace podlb::demo
