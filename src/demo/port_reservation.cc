#include "demo/port_reservation.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"

namespace podlb::demo {
namespace {

// A socket bound to ip:port without SO_REUSEADDR (port 0: the kernel picks); -1 and `error` set
// on failure.
int BindExclusive(int type, const in_addr& ip, int port, int* error) {
  int fd = socket(AF_INET, type | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    *error = errno;
    return -1;
  }
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr = ip;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    *error = errno;
    close(fd);
    return -1;
  }
  return fd;
}

int BoundPort(int fd) {
  sockaddr_in addr{};
  socklen_t len = sizeof(addr);
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) return 0;
  return ntohs(addr.sin_port);
}

}  // namespace

absl::StatusOr<PortReservation> PortReservation::Reserve(const std::string& ip,
                                                         Protocols protocols) {
  in_addr address{};
  if (inet_pton(AF_INET, ip.c_str(), &address) != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("port reservation: \"", ip, "\" is not an IPv4 address"));
  }
  // TCP picks the port; UDP must then have it free too. A port held in UDP only is skipped: the
  // search ends on the first port free in both, not on a lucky timing.
  constexpr int kAttempts = 64;
  int error = 0;
  for (int attempt = 0; attempt < kAttempts; ++attempt) {
    int tcp = BindExclusive(SOCK_STREAM, address, 0, &error);
    if (tcp < 0) break;
    int port = BoundPort(tcp);
    int udp = -1;
    if (protocols == Protocols::kTcpAndUdp) {
      udp = BindExclusive(SOCK_DGRAM, address, port, &error);
      if (udp < 0) {
        close(tcp);
        if (error == EADDRINUSE) continue;
        break;
      }
    }
    int one = 1;
    setsockopt(tcp, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (udp >= 0) setsockopt(udp, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    return PortReservation(port, tcp, udp);
  }
  return absl::UnavailableError(
      absl::StrCat("port reservation: no port free on ", ip,
                   protocols == Protocols::kTcpAndUdp ? " in both TCP and UDP: " : ": ",
                   error ? std::strerror(error) : "every port tried was taken",
                   " (is the loopback interface up, and the ephemeral port range not exhausted?)"));
}

PortReservation::PortReservation(PortReservation&& other) noexcept
    : port_(std::exchange(other.port_, 0)),
      tcp_fd_(std::exchange(other.tcp_fd_, -1)),
      udp_fd_(std::exchange(other.udp_fd_, -1)) {}

PortReservation& PortReservation::operator=(PortReservation&& other) noexcept {
  if (this != &other) {
    Release();
    port_ = std::exchange(other.port_, 0);
    tcp_fd_ = std::exchange(other.tcp_fd_, -1);
    udp_fd_ = std::exchange(other.udp_fd_, -1);
  }
  return *this;
}

PortReservation::~PortReservation() { Release(); }

void PortReservation::Release() {
  if (tcp_fd_ >= 0) close(tcp_fd_);
  if (udp_fd_ >= 0) close(udp_fd_);
  tcp_fd_ = udp_fd_ = -1;
}

}  // namespace podlb::demo
