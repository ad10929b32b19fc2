#include "process/child_process.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace podlb {
namespace {

// Pointers into `strings` with the terminating null execve wants. Built before fork: the child
// of a multi-threaded process should only make async-signal-safe calls until it execs.
std::vector<char*> CStrings(std::vector<std::string>& strings) {
  std::vector<char*> out;
  for (auto& s : strings) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

// The parent's environment with `overrides` (NAME=VALUE) replacing or adding entries.
std::vector<std::string> ChildEnvironment(const std::vector<std::string>& overrides,
                                         bool inherit) {
  std::vector<std::string> env;
  for (char** e = inherit ? environ : nullptr; e != nullptr && *e != nullptr; ++e) {
    std::string entry(*e);
    std::string name = entry.substr(0, entry.find('='));
    bool replaced = false;
    for (const auto& o : overrides) replaced = replaced || o.substr(0, o.find('=')) == name;
    if (!replaced) env.push_back(std::move(entry));
  }
  env.insert(env.end(), overrides.begin(), overrides.end());
  return env;
}

// In the child after fork (async-signal-safe calls only): dies with the parent, and gets back
// the signals the CLI blocks.
[[noreturn]] void ExecChild(char* const* argv, char* const* envp, int out_fd,
                            const ChildOptions& options) {
  if (options.own_process_group) setpgid(0, 0);
  if (!options.working_dir.empty() && chdir(options.working_dir.c_str()) != 0) _exit(126);
  prctl(PR_SET_PDEATHSIG, options.parent_death_signal);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  signal(SIGPIPE, SIG_DFL);
  int devnull = open("/dev/null", O_RDONLY);
  if (devnull >= 0) dup2(devnull, STDIN_FILENO);
  dup2(out_fd, STDOUT_FILENO);
  if (options.capture_stderr || !options.output_path.empty()) dup2(out_fd, STDERR_FILENO);
  execvpe(argv[0], argv, envp);
  _exit(127);
}

// Blocks until `pid` exits or `timeout` passes (negative: no limit), without reaping it.
void AwaitExit(pid_t pid, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  int pidfd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
  if (pidfd < 0) {
    if (errno == ESRCH) return;  // gone already: the caller's waitpid says how
    // No pidfd (a kernel before 5.3, or a seccomp filter): look at the exit without reaping it,
    // at a short interval.
    siginfo_t info{};
    while (waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG | WNOWAIT) == 0 &&
           info.si_pid == 0) {
      if (timeout.count() >= 0 && std::chrono::steady_clock::now() >= deadline) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return;
  }
  while (true) {
    int wait_ms = -1;
    if (timeout.count() >= 0) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      wait_ms = static_cast<int>(std::max<int64_t>(left.count(), 0));
    }
    pollfd p{pidfd, POLLIN, 0};
    int rc = poll(&p, 1, wait_ms);
    if (rc >= 0 || errno != EINTR) break;
  }
  close(pidfd);
}

}  // namespace

ChildProcess::~ChildProcess() { Stop(); }

absl::Status ChildProcess::Start(std::vector<std::string> argv, const ChildOptions& options) {
  if (argv.empty()) return absl::InvalidArgumentError("child process: empty command");
  std::vector<std::string> env = ChildEnvironment(options.env, options.inherit_env);
  std::vector<char*> argv_c = CStrings(argv);
  std::vector<char*> envp_c = CStrings(env);
  int fds[2];
  if (!options.output_path.empty()) {
    // The file stands in for the pipe's write end; nothing reads it here.
    fds[0] = -1;
    fds[1] = open(options.output_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    if (fds[1] < 0) {
      return absl::InternalError(absl::StrCat("child process ", argv[0], ": cannot open ",
                                              options.output_path, ": ", strerror(errno)));
    }
  } else if (pipe2(fds, O_CLOEXEC) != 0) {
    return absl::InternalError(absl::StrCat("child process ", argv[0], ": pipe: ", strerror(errno)));
  }
  pid_t pid = fork();
  if (pid < 0) {
    if (fds[0] >= 0) close(fds[0]);
    close(fds[1]);
    return absl::InternalError(absl::StrCat("child process ", argv[0], ": fork: ", strerror(errno)));
  }
  if (pid == 0) ExecChild(argv_c.data(), envp_c.data(), fds[1], options);
  if (fds[0] >= 0) close(fds[1]);
  pid_ = pid;
  own_process_group_ = options.own_process_group;
  wait_status_ = -1;
  if (fds[0] < 0) {
    output_to_file_ = true;
    close(fds[1]);
    absl::MutexLock lock(&mu_);
    eof_ = true;  // no lines will come: WaitForLine answers at once
    return absl::OkStatus();
  }
  reader_ = std::thread([this, fd = fds[0]] { ReadLoop(fd); });
  return absl::OkStatus();
}

void ChildProcess::ReadLoop(int fd) {
  std::string partial;
  char buffer[4096];
  while (true) {
    ssize_t n = read(fd, buffer, sizeof(buffer));
    if (n < 0 && errno == EINTR) continue;
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
  if (!partial.empty()) {
    lines_.push_back(std::move(partial));
    last_line_complete_ = false;
  }
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
  if (output_to_file_) {
    // No output to watch: wait on the exit itself, without reaping (Running/Reap say how).
    if (pid_ <= 0) return true;
    AwaitExit(pid_, timeout);
    siginfo_t info{};
    return waitid(P_PID, static_cast<id_t>(pid_), &info, WEXITED | WNOHANG | WNOWAIT) == 0 &&
           info.si_pid != 0;
  }
  absl::MutexLock lock(&mu_);
  return mu_.AwaitWithTimeout(absl::Condition(&eof_), absl::FromChrono(timeout));
}

bool ChildProcess::Reap(std::chrono::milliseconds timeout) {
  if (pid_ <= 0) return true;
  AwaitExit(pid_, timeout);
  int status = 0;
  pid_t reaped = waitpid(pid_, &status, WNOHANG);
  if (reaped == 0) return false;
  wait_status_ = reaped == pid_ ? status : -1;
  pid_ = -1;
  return true;
}

std::vector<std::string> ChildProcess::Lines() const {
  absl::MutexLock lock(&mu_);
  return lines_;
}

std::string ChildProcess::Output() const {
  absl::MutexLock lock(&mu_);
  std::string out = absl::StrJoin(lines_, "\n");
  if (!lines_.empty() && last_line_complete_) out += "\n";
  return out;
}

bool ChildProcess::Running() { return !Reap(std::chrono::milliseconds(0)); }

void ChildProcess::Kill(int signal) {
  if (pid_ <= 0) return;
  if (own_process_group_) kill(-pid_, signal);
  kill(pid_, signal);
}

void ChildProcess::Signal(int signal) { Kill(signal); }

void ChildProcess::Stop(std::chrono::milliseconds timeout) {
  if (pid_ > 0) {
    Kill(SIGTERM);
    if (!Reap(timeout)) {
      Kill(SIGKILL);
      Reap(std::chrono::milliseconds(-1));
    }
  }
  if (reader_.joinable()) reader_.join();
}

std::string DescribeWaitStatus(int wait_status) {
  if (wait_status < 0) return "ended (status unknown)";
  if (WIFEXITED(wait_status)) return absl::StrCat("exited with status ", WEXITSTATUS(wait_status));
  if (WIFSIGNALED(wait_status)) return absl::StrCat("killed by signal ", WTERMSIG(wait_status));
  return absl::StrCat("ended (wait status ", wait_status, ")");
}

int ExitCode(int wait_status) {
  if (wait_status < 0) return -1;
  if (WIFEXITED(wait_status)) return WEXITSTATUS(wait_status);
  if (WIFSIGNALED(wait_status)) return -WTERMSIG(wait_status);
  return -1;
}

absl::StatusOr<CommandResult> RunCommand(std::vector<std::string> argv, const ChildOptions& options,
                                         std::chrono::milliseconds timeout) {
  ChildProcess child;
  if (auto status = child.Start(std::move(argv), options); !status.ok()) return status;
  CommandResult result;
  if (!child.Reap(timeout)) {
    result.timed_out = true;
    child.Stop(std::chrono::milliseconds(0));
  }
  child.Stop();  // reaped already: waits for the output to end
  result.wait_status = child.wait_status();
  result.output = child.Output();
  return result;
}

absl::StatusOr<std::string> RunAndCapture(std::vector<std::string> argv) {
  std::string command = absl::StrJoin(argv, " ");
  auto result = RunCommand(std::move(argv), {}, std::chrono::seconds(30));
  if (!result.ok()) return result.status();
  if (result->timed_out || ExitCode(result->wait_status) != 0) {
    return absl::UnknownError(absl::StrCat("`", command, "` ",
                                           result->timed_out ? "did not finish within 30 s"
                                                             : DescribeWaitStatus(result->wait_status)));
  }
  std::string out = std::move(result->output);
  if (!out.empty() && out.back() == '\n') out.pop_back();  // as the lines joined
  return out;
}

}  // namespace podlb
