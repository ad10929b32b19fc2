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

// Pointers into `strings` with the terminating null execve wants. Built before fork: the child
// of a multi-threaded process should only make async-signal-safe calls until it execs.
std::vector<char*> CStrings(std::vector<std::string>& strings) {
  std::vector<char*> out;
  for (auto& s : strings) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

// The demo's environment with `overrides` (NAME=VALUE) replacing or adding entries.
std::vector<std::string> ChildEnvironment(const std::vector<std::string>& overrides) {
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string entry(*e);
    std::string name = entry.substr(0, entry.find('='));
    bool replaced = false;
    for (const auto& o : overrides) replaced = replaced || o.substr(0, o.find('=')) == name;
    if (!replaced) env.push_back(std::move(entry));
  }
  env.insert(env.end(), overrides.begin(), overrides.end());
  return env;
}

// In the child after fork: dies with the parent, and gets the signals the CLI blocks back.
[[noreturn]] void ExecChild(char* const* argv, char* const* envp, int out_fd, bool capture_stderr) {
  prctl(PR_SET_PDEATHSIG, SIGTERM);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  signal(SIGPIPE, SIG_DFL);
  dup2(out_fd, STDOUT_FILENO);
  if (capture_stderr) dup2(out_fd, STDERR_FILENO);
  execvpe(argv[0], argv, envp);
  _exit(127);
}

}  // namespace

ChildProcess::~ChildProcess() { Stop(); }

absl::Status ChildProcess::Start(std::vector<std::string> argv, const ChildOptions& options) {
  std::vector<std::string> env = ChildEnvironment(options.env);
  std::vector<char*> argv_c = CStrings(argv);
  std::vector<char*> envp_c = CStrings(env);
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return absl::InternalError("demo: pipe failed");
  pid_t pid = fork();
  if (pid < 0) return absl::InternalError("demo: fork failed");
  if (pid == 0) ExecChild(argv_c.data(), envp_c.data(), fds[1], options.capture_stderr);
  close(fds[1]);
  pid_ = pid;
  wait_status_ = -1;
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

bool ChildProcess::WaitForExit(std::chrono::milliseconds timeout) {
  absl::MutexLock lock(&mu_);
  return mu_.AwaitWithTimeout(absl::Condition(&eof_), absl::FromChrono(timeout));
}

std::vector<std::string> ChildProcess::Lines() {
  absl::MutexLock lock(&mu_);
  return lines_;
}

bool ChildProcess::Running() {
  if (pid_ <= 0) return false;
  int status = 0;
  pid_t reaped = waitpid(pid_, &status, WNOHANG);
  if (reaped == 0) return true;
  wait_status_ = reaped == pid_ ? status : -1;
  pid_ = -1;
  return false;
}

void ChildProcess::Signal(int signal) {
  if (pid_ > 0) kill(pid_, signal);
}

void ChildProcess::Stop(std::chrono::milliseconds timeout) {
  if (pid_ > 0) {
    kill(pid_, SIGTERM);
    auto deadline = std::chrono::steady_clock::now() + timeout;
    int status = 0;
    pid_t reaped;
    while ((reaped = waitpid(pid_, &status, WNOHANG)) == 0) {
      if (std::chrono::steady_clock::now() > deadline) {
        kill(pid_, SIGKILL);
        reaped = waitpid(pid_, &status, 0);
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    wait_status_ = reaped == pid_ ? status : -1;
    pid_ = -1;
  }
  if (reader_.joinable()) reader_.join();
}

std::string DescribeWaitStatus(int wait_status) {
  if (wait_status < 0) return "ended (status unknown)";
  if (WIFEXITED(wait_status)) return absl::StrCat("exited with status ", WEXITSTATUS(wait_status));
  if (WIFSIGNALED(wait_status)) return absl::StrCat("killed by signal ", WTERMSIG(wait_status));
  return absl::StrCat("ended (wait status ", wait_status, ")");
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
