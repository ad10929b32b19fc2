// PortReservation: a port on one loopback address, held for a helper process the demo starts
// (dnsmasq, `podlb control-plane`) so that nothing else can take it between the choice and the
// helper's own bind. Any thread; not shared between threads.
//
// Picking a free port by binding port 0 and closing the socket leaves a window: the port is free
// again the moment it closes, and an outgoing connection's autobind or another program's bind
// may take it before the helper binds it. A reservation instead keeps its sockets bound: they
// were bound without SO_REUSEADDR (so the kernel gave a port nobody holds, in both TCP and UDP
// if asked) and set SO_REUSEADDR afterwards. The kernel then lets a socket that itself sets
// SO_REUSEADDR bind the same address and port beside them (dnsmasq and gRPC servers do), while
// plain binds fail with EADDRINUSE and connect() never autobinds to the port.
#pragma once

#include <string>

#include "absl/status/statusor.h"

namespace podlb::demo {

class PortReservation {
 public:
  enum class Protocols { kTcp, kTcpAndUdp };

  // A port free in every asked-for protocol on `ip` (an IPv4 literal), held until Release.
  static absl::StatusOr<PortReservation> Reserve(const std::string& ip, Protocols protocols);

  PortReservation(PortReservation&& other) noexcept;
  PortReservation& operator=(PortReservation&& other) noexcept;
  PortReservation(const PortReservation&) = delete;
  PortReservation& operator=(const PortReservation&) = delete;
  ~PortReservation();  // Release

  int port() const { return port_; }
  // Closes the held sockets: from here on the port is anyone's.
  void Release();

 private:
  PortReservation(int port, int tcp_fd, int udp_fd)
      : port_(port), tcp_fd_(tcp_fd), udp_fd_(udp_fd) {}

  int port_ = 0;
  int tcp_fd_ = -1;
  int udp_fd_ = -1;
};

}  // namespace podlb::demo
