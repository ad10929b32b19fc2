#include "demo/tcp_forwarder.h"

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
#include "core/logging.h"

namespace podlb::demo {

int ConnectTcp(const std::string& host_port) {
  auto parsed = ParseHostPort(host_port);
  if (!parsed.ok()) return -1;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(parsed->port);
  if (inet_pton(AF_INET, parsed->host.c_str(), &addr.sin_addr) != 1) return -1;
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return -1;
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  return fd;
}

TcpForwarder::TcpForwarder(std::string listen_ip, Picker pick)
    : listen_ip_(std::move(listen_ip)), pick_(std::move(pick)) {}

TcpForwarder::~TcpForwarder() { Stop(); }

absl::Status TcpForwarder::Start() {
  listen_fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (listen_fd_ < 0) return absl::InternalError("clusterip forwarder: socket() failed");
  int one = 1;
  setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = 0;
  if (inet_pton(AF_INET, listen_ip_.c_str(), &addr.sin_addr) != 1 ||
      bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      listen(listen_fd_, 128) != 0) {
    std::string error = std::strerror(errno);
    close(listen_fd_);
    listen_fd_ = -1;
    return absl::UnavailableError(absl::StrCat("clusterip forwarder: cannot listen on ",
                                               listen_ip_, ": ", error,
                                               " (pick another loopback address)"));
  }
  socklen_t len = sizeof(addr);
  getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
  port_ = ntohs(addr.sin_port);
  if (pipe2(wake_pipe_, O_CLOEXEC) != 0) return absl::InternalError("clusterip: pipe failed");
  acceptor_ = std::thread([this] { AcceptLoop(); });
  return absl::OkStatus();
}

void TcpForwarder::Stop() {
  {
    absl::MutexLock lock(&mu_);
    if (stopping_ || listen_fd_ < 0) return;
    stopping_ = true;
  }
  char byte = 1;
  [[maybe_unused]] auto n = write(wake_pipe_[1], &byte, 1);
  if (acceptor_.joinable()) acceptor_.join();
  std::vector<std::thread> connections;
  {
    absl::MutexLock lock(&mu_);
    connections.swap(connections_);
  }
  for (auto& t : connections) t.join();
  close(listen_fd_);
  close(wake_pipe_[0]);
  close(wake_pipe_[1]);
  listen_fd_ = -1;
}

std::string TcpForwarder::address() const { return absl::StrCat(listen_ip_, ":", port_); }

void TcpForwarder::AcceptLoop() {
  while (true) {
    pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {wake_pipe_[0], POLLIN, 0}};
    if (poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (fds[1].revents) return;
    int client = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (client < 0) continue;
    int one = 1;
    setsockopt(client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    std::optional<std::string> backend = pick_();
    int backend_fd = backend ? ConnectTcp(*backend) : -1;
    if (backend_fd < 0) {
      // kube-proxy with no ready endpoint rejects the connection.
      close(client);
      continue;
    }
    forwarded_.fetch_add(1);
    absl::MutexLock lock(&mu_);
    connections_.emplace_back([this, client, backend_fd] { Pump(client, backend_fd); });
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

}  // namespace podlb::demo
