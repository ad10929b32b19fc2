#include "net/tcp_forwarder.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "core/host_port.h"

namespace podlb::net {
namespace {

bool ToSockaddr(const std::string& ip, uint16_t port, sockaddr_in* addr) {
  *addr = sockaddr_in{};
  addr->sin_family = AF_INET;
  addr->sin_port = htons(port);
  return inet_pton(AF_INET, ip.c_str(), &addr->sin_addr) == 1;
}

}  // namespace

int ConnectTcp(const std::string& host_port, const std::string& source_ip) {
  auto parsed = ParseHostPort(host_port);
  if (!parsed.ok()) return -1;
  sockaddr_in addr;
  if (!ToSockaddr(parsed->host, parsed->port, &addr)) return -1;
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in source;
  if (!source_ip.empty() && (!ToSockaddr(source_ip, 0, &source) ||
                             bind(fd, reinterpret_cast<sockaddr*>(&source), sizeof(source)) != 0)) {
    close(fd);
    return -1;
  }
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return -1;
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  return fd;
}

TcpForwarder::TcpForwarder(std::string listen_ip, uint16_t listen_port, Picker pick)
    : listen_ip_(std::move(listen_ip)), pick_(std::move(pick)), port_(listen_port) {}

TcpForwarder::~TcpForwarder() { Stop(); }

absl::Status TcpForwarder::Start() {
  if (listen_fd_ >= 0) return absl::FailedPreconditionError("tcp forwarder: already started");
  sockaddr_in addr;
  if (!ToSockaddr(listen_ip_, port_, &addr)) {
    return absl::InvalidArgumentError(
        absl::StrCat("tcp forwarder: \"", listen_ip_, "\" is not an IPv4 address"));
  }
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::InternalError("tcp forwarder: socket() failed");
  // A listener closed a moment ago (a Service port removed and added again) leaves its
  // accepted connections in TIME_WAIT; without SO_REUSEADDR the port could not be bound again.
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 || listen(fd, 128) != 0) {
    std::string error = std::strerror(errno);
    close(fd);
    return absl::UnavailableError(absl::StrCat("tcp forwarder: cannot listen on ",
                                               FormatHostPort(listen_ip_, port_), ": ", error));
  }
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  if (pipe2(wake_pipe_, O_CLOEXEC) != 0) {
    close(fd);
    return absl::InternalError("tcp forwarder: pipe2() failed");
  }
  listen_fd_ = fd;
  port_ = ntohs(addr.sin_port);
  {
    absl::MutexLock lock(&mu_);
    stopping_ = false;
  }
  acceptor_ = std::thread([this] { AcceptLoop(); });
  return absl::OkStatus();
}

void TcpForwarder::Stop() {
  {
    absl::MutexLock lock(&mu_);
    if (stopping_ || listen_fd_ < 0) return;
    stopping_ = true;
  }
  // The pipe stays readable: every poll loop (the acceptor's, each connection's) sees it.
  char byte = 1;
  [[maybe_unused]] auto n = write(wake_pipe_[1], &byte, 1);
  if (acceptor_.joinable()) acceptor_.join();
  std::list<Connection> connections;
  {
    absl::MutexLock lock(&mu_);
    connections.swap(connections_);
  }
  for (auto& c : connections) c.thread.join();
  close(listen_fd_);
  close(wake_pipe_[0]);
  close(wake_pipe_[1]);
  listen_fd_ = -1;
}

std::string TcpForwarder::address() const { return FormatHostPort(listen_ip_, port_); }

void TcpForwarder::ReapFinished() {
  std::list<Connection> finished;
  {
    absl::MutexLock lock(&mu_);
    for (auto it = connections_.begin(); it != connections_.end();) {
      auto next = std::next(it);
      if (it->done) finished.splice(finished.end(), connections_, it);
      it = next;
    }
  }
  for (auto& c : finished) c.thread.join();
}

void TcpForwarder::AcceptLoop() {
  while (true) {
    pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {wake_pipe_[0], POLLIN, 0}};
    if (poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (fds[1].revents) return;
    sockaddr_in peer{};
    socklen_t peer_len = sizeof(peer);
    int client = accept4(listen_fd_, reinterpret_cast<sockaddr*>(&peer), &peer_len, SOCK_CLOEXEC);
    if (client < 0) continue;
    ReapFinished();
    char peer_ip[INET_ADDRSTRLEN] = "";
    inet_ntop(AF_INET, &peer.sin_addr, peer_ip, sizeof(peer_ip));
    int one = 1;
    setsockopt(client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    std::optional<std::string> backend = pick_(peer_ip);
    int backend_fd = backend ? ConnectTcp(*backend) : -1;
    if (backend_fd < 0) {
      // kube-proxy with no (reachable) endpoint rejects the connection.
      refused_.fetch_add(1);
      close(client);
      continue;
    }
    forwarded_.fetch_add(1);
    absl::MutexLock lock(&mu_);
    Connection& connection = connections_.emplace_back();
    // The thread marks itself done under mu_, which is held here until `thread` is assigned.
    connection.thread = std::thread([this, client, backend_fd, &connection] {
      Pump(client, backend_fd);
      absl::MutexLock done_lock(&mu_);
      connection.done = true;
    });
  }
}

void TcpForwarder::Pump(int client_fd, int backend_fd) {
  // One thread moves bytes both ways; a half-close is passed on (shutdown SHUT_WR) so the
  // backend's GOAWAY-then-close reaches the client as it would through kube-proxy.
  char buffer[16384];
  bool open[2] = {true, true};  // [0]: client→backend, [1]: backend→client
  int from[2] = {client_fd, backend_fd};
  int to[2] = {backend_fd, client_fd};
  while (open[0] || open[1]) {
    pollfd fds[3] = {{open[0] ? client_fd : -1, POLLIN, 0},
                     {open[1] ? backend_fd : -1, POLLIN, 0},
                     {wake_pipe_[0], POLLIN, 0}};
    if (poll(fds, 3, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (fds[2].revents) break;
    bool failed = false;
    for (int dir = 0; dir < 2; ++dir) {
      if (!open[dir] || !(fds[dir].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      ssize_t n = read(from[dir], buffer, sizeof(buffer));
      if (n <= 0) {
        if (n < 0) failed = true;
        open[dir] = false;
        shutdown(to[dir], SHUT_WR);
        continue;
      }
      for (ssize_t done = 0; done < n;) {
        ssize_t w = send(to[dir], buffer + done, static_cast<size_t>(n - done), MSG_NOSIGNAL);
        if (w <= 0) {
          failed = true;
          break;
        }
        done += w;
      }
      if (failed) break;
    }
    if (failed) break;  // a reset on either side resets the whole connection
  }
  close(client_fd);
  close(backend_fd);
}

}  // namespace podlb::net
