#include "support/process.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

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

pid_t Spawn(const std::vector<std::string>& argv, const std::vector<std::string>& extra_env,
            int stdout_fd, int stderr_fd) {
  pid_t pid = fork();
  if (pid != 0) return pid;
  // Child: new process group so Terminate reaches helpers it starts too. If the test binary
  // dies (a crash), the kernel kills the child, so no orphan keeps ctest's pipes open.
  setpgid(0, 0);
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (stdout_fd >= 0) dup2(stdout_fd, STDOUT_FILENO);
  if (stderr_fd >= 0) dup2(stderr_fd, STDERR_FILENO);
  int devnull = open("/dev/null", O_RDONLY);
  dup2(devnull, STDIN_FILENO);
  for (const auto& kv : extra_env) putenv(strdup(kv.c_str()));
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  execvp(args[0], args.data());
  fprintf(stderr, "exec %s failed: %s\n", args[0], strerror(errno));
  _exit(127);
}

int DecodeStatus(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return -WTERMSIG(status);
  return -1;
}

int WaitPid(pid_t pid, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    int status;
    pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) return DecodeStatus(status);
    if (r < 0) return -1;
    if (std::chrono::steady_clock::now() > deadline) return -1000;
    // waitpid has no timeout form; poll the exit at a short interval.
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

}  // namespace

ChildProcess::ChildProcess(std::vector<std::string> argv, std::vector<std::string> extra_env) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) abort();
  pid_ = Spawn(argv, extra_env, fds[1], -1);
  close(fds[1]);
  int read_fd = fds[0];
  reader_ = new std::thread([this, read_fd] { ReadLoop(read_fd); });
}

void ChildProcess::ReadLoop(int fd) {
  std::string pending;
  char buf[4096];
  while (true) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    pending.append(buf, n);
    size_t pos;
    while ((pos = pending.find('\n')) != std::string::npos) {
      absl::MutexLock lock(&mu_);
      lines_.push_back(pending.substr(0, pos));
      pending.erase(0, pos + 1);
    }
  }
  close(fd);
  absl::MutexLock lock(&mu_);
  if (!pending.empty()) lines_.push_back(pending);
  eof_ = true;
}

ChildProcess::~ChildProcess() {
  if (exit_status_ == -1000 && pid_ > 0) Terminate();
  if (reader_) {
    reader_->join();
    delete reader_;
  }
}

::testing::AssertionResult ChildProcess::WaitForLine(
    const std::function<bool(const std::string&)>& match, std::chrono::milliseconds timeout) {
  size_t checked = 0;
  auto condition = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    for (; checked < lines_.size(); ++checked)
      if (match(lines_[checked])) return true;
    return eof_;
  };
  absl::MutexLock lock(&mu_);
  mu_.AwaitWithTimeout(absl::Condition(&condition), absl::FromChrono(timeout));
  for (const auto& line : lines_)
    if (match(line)) return ::testing::AssertionSuccess();
  std::string tail;
  size_t from = lines_.size() > 20 ? lines_.size() - 20 : 0;
  for (size_t i = from; i < lines_.size(); ++i) tail += "\n  | " + lines_[i];
  return ::testing::AssertionFailure()
         << (eof_ ? "process closed stdout" : "timed out") << " before the expected line; last lines:"
         << tail;
}

::testing::AssertionResult ChildProcess::WaitForLineContaining(const std::string& needle,
                                                                std::chrono::milliseconds timeout) {
  return WaitForLine([&](const std::string& l) { return l.find(needle) != std::string::npos; },
                     timeout);
}

std::vector<std::string> ChildProcess::Lines() const {
  absl::MutexLock lock(&mu_);
  return lines_;
}

int ChildProcess::Terminate(std::chrono::milliseconds timeout) {
  if (exit_status_ != -1000) return exit_status_;
  kill(-pid_, SIGTERM);
  kill(pid_, SIGTERM);
  int status = WaitPid(pid_, timeout);
  if (status == -1000) {
    kill(-pid_, SIGKILL);
    status = WaitPid(pid_, std::chrono::seconds(5));
  }
  exit_status_ = status;
  return status;
}

int ChildProcess::WaitExit(std::chrono::milliseconds timeout) {
  if (exit_status_ != -1000) return exit_status_;
  int status = WaitPid(pid_, timeout);
  if (status != -1000) exit_status_ = status;
  return status;
}

int RunCommand(const std::vector<std::string>& argv, std::string* output,
               std::chrono::milliseconds timeout, std::vector<std::string> extra_env) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) abort();
  pid_t pid = Spawn(argv, extra_env, fds[1], fds[1]);
  close(fds[1]);
  std::string out;
  std::thread reader([&] {
    char buf[4096];
    ssize_t n;
    while ((n = read(fds[0], buf, sizeof buf)) > 0 || (n < 0 && errno == EINTR))
      if (n > 0) out.append(buf, n);
  });
  int status = WaitPid(pid, timeout);
  if (status == -1000) {
    kill(-pid, SIGKILL);
    kill(pid, SIGKILL);
    status = WaitPid(pid, std::chrono::seconds(5));
    out += "\n[killed after timeout]";
  }
  reader.join();
  close(fds[0]);
  if (output) *output = out;
  return status;
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
