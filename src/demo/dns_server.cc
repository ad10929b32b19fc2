#include "demo/dns_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <thread>

#include "absl/strings/str_cat.h"

namespace podlb::demo {
namespace {

// Binds 127.0.0.1:port over UDP; 0 on failure. With port 0 returns the port the kernel chose.
int BindUdp(int port) {
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return 0;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int result = 0;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
    socklen_t len = sizeof(addr);
    getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
    result = ntohs(addr.sin_port);
  }
  close(fd);
  return result;
}

}  // namespace

DnsServer::DnsServer(std::string name, std::string dir)
    : name_(std::move(name)), dir_(std::move(dir)) {}

DnsServer::~DnsServer() { Stop(); }

std::string DnsServer::server() const { return absl::StrCat("127.0.0.1:", port_); }

absl::Status DnsServer::WriteHostsLocked(const std::vector<std::string>& addresses) {
  std::string tmp = dir_ + "/hosts.tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    for (const auto& a : addresses) out << a << " " << name_ << "\n";
    if (!out) return absl::InternalError("dns: cannot write " + tmp);
  }
  // rename is atomic: dnsmasq never reads half a file.
  if (std::rename(tmp.c_str(), (dir_ + "/hosts").c_str()) != 0) {
    return absl::InternalError("dns: cannot rename " + tmp);
  }
  return absl::OkStatus();
}

absl::Status DnsServer::Start(const std::vector<std::string>& addresses) {
  // The port is picked before dnsmasq binds it (UDP and TCP), so another process may take it in
  // between: try a few ports.
  absl::Status status;
  for (int attempt = 0; attempt < 5; ++attempt) {
    status = StartOnce(addresses);
    if (status.ok() || !absl::IsAborted(status)) return status;
  }
  return absl::UnavailableError(std::string(status.message()));
}

absl::Status DnsServer::StartOnce(const std::vector<std::string>& addresses) {
  absl::MutexLock lock(&mu_);
  if (auto status = WriteHostsLocked(addresses); !status.ok()) return status;
  port_ = BindUdp(0);
  if (port_ == 0) return absl::UnavailableError("dns: no free UDP port on 127.0.0.1");
  std::vector<std::string> args = {"dnsmasq",
                                   "--keep-in-foreground",
                                   absl::StrCat("--port=", port_),
                                   "--listen-address=127.0.0.1",
                                   "--bind-interfaces",
                                   "--no-resolv",
                                   "--no-hosts",
                                   "--addn-hosts=" + dir_ + "/hosts",
                                   "--local-ttl=0",
                                   "--pid-file=",
                                   "--log-facility=" + dir_ + "/dnsmasq.log"};
  // As root dnsmasq would drop to user "nobody", which may not read our files.
  if (geteuid() == 0) args.push_back("--user=root");
  std::string log_path = dir_ + "/dnsmasq.log";
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = fork();
  if (pid < 0) return absl::InternalError("dns: fork failed");
  if (pid == 0) {
    // dnsmasq reports start-up errors on stderr: keep them with its log, not in the demo's output.
    int log_fd = open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (log_fd >= 0) dup2(log_fd, STDERR_FILENO);
    prctl(PR_SET_PDEATHSIG, SIGTERM);  // never outlive the demo
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);  // the CLI blocks SIGTERM for sigwait
    execvp("dnsmasq", argv.data());
    execv("/usr/sbin/dnsmasq", argv.data());
    _exit(127);
  }
  pid_ = pid;
  // dnsmasq serves once it holds the port: wait until we can no longer bind it.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (BindUdp(port_) != 0) {
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return absl::AbortedError(
          "dns: dnsmasq exited at start (port taken? is Debian's dnsmasq-base installed? see " +
          dir_ + "/dnsmasq.log)");
    }
    if (std::chrono::steady_clock::now() > deadline) {
      return absl::DeadlineExceededError("dns: dnsmasq did not bind its port within 5 s");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return absl::OkStatus();
}

void DnsServer::SetAddresses(const std::vector<std::string>& addresses) {
  absl::MutexLock lock(&mu_);
  if (pid_ <= 0) return;
  if (WriteHostsLocked(addresses).ok()) kill(pid_, SIGHUP);
}

void DnsServer::Stop() {
  absl::MutexLock lock(&mu_);
  if (pid_ <= 0) return;
  kill(pid_, SIGTERM);
  waitpid(pid_, nullptr, 0);
  pid_ = -1;
}

}  // namespace podlb::demo
