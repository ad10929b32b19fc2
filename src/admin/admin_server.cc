#include "admin/admin_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <thread>

#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/synchronization/mutex.h"
#include "core/host_port.h"
#include "core/logging.h"
#include "fmt/format.h"

namespace podlb {
namespace {

constexpr size_t kMaxRequestBytes = 16 * 1024;

std::string StatusText(int status) {
  switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 503: return "Service Unavailable";
    default: return "Status";
  }
}

absl::StatusOr<sockaddr_in> ParseAdminAddress(const std::string& host_port) {
  auto parsed = ParseHostPort(host_port);
  if (!parsed.ok())
    return absl::InvalidArgumentError("admin address " + std::string(parsed.status().message()));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  if (inet_pton(AF_INET, parsed->host.c_str(), &addr.sin_addr) != 1) {
    return absl::InvalidArgumentError(fmt::format(
        "admin address \"{}\": the host must be an IPv4 address, e.g. 127.0.0.1:9901", host_port));
  }
  addr.sin_port = htons(parsed->port);
  return addr;
}

}  // namespace

struct AdminServer::Impl {
  std::map<std::string, AdminHandler> handlers;
  int listen_fd = -1;
  int stop_fd = -1;
  int port = 0;
  std::thread accept_thread;
  absl::Mutex mu;
  // Connection threads are detached; Stop() waits for this to reach zero.
  int active_connections ABSL_GUARDED_BY(mu) = 0;

  void AcceptLoop() {
    while (true) {
      pollfd fds[2] = {{listen_fd, POLLIN, 0}, {stop_fd, POLLIN, 0}};
      if (poll(fds, 2, -1) < 0 && errno != EINTR) return;
      if (fds[1].revents) return;
      if (!(fds[0].revents & POLLIN)) continue;
      int fd = accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) continue;
      {
        absl::MutexLock lock(&mu);
        ++active_connections;
      }
      std::thread([this, fd] {
        Serve(fd);
        absl::MutexLock lock(&mu);
        --active_connections;
      }).detach();
    }
  }

  // One request per connection (Connection: close): admin clients are probes and scrapers.
  void Serve(int fd) {
    timeval tv{.tv_sec = 5, .tv_usec = 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    std::string request;
    char buf[4096];
    while (request.find("\r\n\r\n") == std::string::npos && request.size() < kMaxRequestBytes) {
      ssize_t n = recv(fd, buf, sizeof buf, 0);
      if (n <= 0) break;
      request.append(buf, n);
    }
    AdminResponse response = Dispatch(request);
    std::string head = fmt::format(
        "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        response.status, StatusText(response.status), response.content_type, response.body.size());
    std::string out = head + response.body;
    for (size_t sent = 0; sent < out.size();) {
      ssize_t n = send(fd, out.data() + sent, out.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) break;
      sent += n;
    }
    // Lingering close: closing with unread request bytes would send RST, and the peer could
    // lose the response we just wrote. Half-close, drain briefly, then close.
    shutdown(fd, SHUT_WR);
    for (int i = 0; i < 64 && recv(fd, buf, sizeof buf, 0) > 0; ++i) {
    }
    close(fd);
  }

  AdminResponse Dispatch(const std::string& request) {
    size_t line_end = request.find("\r\n");
    if (line_end == std::string::npos) return {400, "text/plain", "malformed request\n"};
    std::string line = request.substr(0, line_end);
    size_t sp1 = line.find(' ');
    size_t sp2 = line.find(' ', sp1 + 1);
    if (sp1 == std::string::npos || sp2 == std::string::npos)
      return {400, "text/plain", "malformed request line\n"};
    std::string method = line.substr(0, sp1);
    std::string target = line.substr(sp1 + 1, sp2 - sp1 - 1);
    if (method != "GET" && method != "HEAD") return {405, "text/plain", "only GET\n"};
    std::string path = target, query;
    if (size_t q = target.find('?'); q != std::string::npos) {
      path = target.substr(0, q);
      query = target.substr(q + 1);
    }
    auto it = handlers.find(path);
    if (it == handlers.end()) {
      std::string paths;
      for (const auto& [p, h] : handlers) paths += p + "\n";
      return {404, "text/plain", "no such admin path; available:\n" + paths};
    }
    return it->second(query);
  }
};

AdminServer::AdminServer() : impl_(std::make_unique<Impl>()) {}

AdminServer::~AdminServer() { Stop(); }

void AdminServer::Handle(const std::string& path, AdminHandler handler) {
  impl_->handlers[path] = std::move(handler);
}

absl::Status AdminServer::Start(const std::string& host_port) {
  auto addr = ParseAdminAddress(host_port);
  if (!addr.ok()) return addr.status();
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(fd, reinterpret_cast<sockaddr*>(&*addr), sizeof *addr) != 0 || listen(fd, 64) != 0) {
    std::string why = std::strerror(errno);
    close(fd);
    return absl::UnavailableError(fmt::format("admin: cannot listen on {}: {}", host_port, why));
  }
  socklen_t len = sizeof *addr;
  getsockname(fd, reinterpret_cast<sockaddr*>(&*addr), &len);
  impl_->port = ntohs(addr->sin_port);
  impl_->listen_fd = fd;
  impl_->stop_fd = eventfd(0, EFD_CLOEXEC);
  impl_->accept_thread = std::thread([impl = impl_.get()] { impl->AcceptLoop(); });
  return absl::OkStatus();
}

void AdminServer::Stop() {
  if (impl_->stop_fd < 0) return;
  uint64_t one = 1;
  [[maybe_unused]] ssize_t n = write(impl_->stop_fd, &one, sizeof one);
  impl_->accept_thread.join();
  {
    absl::MutexLock lock(&impl_->mu);
    auto idle = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(impl_->mu) {
      return impl_->active_connections == 0;
    };
    impl_->mu.Await(absl::Condition(&idle));
  }
  close(impl_->listen_fd);
  close(impl_->stop_fd);
  impl_->listen_fd = impl_->stop_fd = -1;
}

int AdminServer::port() const { return impl_->port; }

}  // namespace podlb
