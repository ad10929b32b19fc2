// PortReservation: while held, a plain bind of the port fails in every reserved protocol (also
// on the wildcard address), while a helper that binds with SO_REUSEADDR, as dnsmasq and gRPC
// servers do, binds and listens beside it; once released, the port is anyone's.
#include "demo/port_reservation.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

namespace podlb::demo {
namespace {

// errno of binding (and for TCP, listening on) ip:port; 0 on success. The socket is closed.
int BindErrno(int type, const char* ip, int port, bool reuse_addr) {
  int fd = socket(AF_INET, type | SOCK_CLOEXEC, 0);
  int one = 1;
  if (reuse_addr) setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  inet_pton(AF_INET, ip, &addr.sin_addr);
  int error = 0;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      (type == SOCK_STREAM && listen(fd, 1) != 0)) {
    error = errno;
  }
  close(fd);
  return error;
}

TEST(PortReservationTest, HeldPortRefusesPlainBindsInBothProtocols) {
  auto held = PortReservation::Reserve("127.0.101.2", PortReservation::Protocols::kTcpAndUdp);
  ASSERT_TRUE(held.ok()) << held.status();
  int port = held->port();
  ASSERT_GT(port, 0);
  EXPECT_EQ(BindErrno(SOCK_STREAM, "127.0.101.2", port, false), EADDRINUSE);
  EXPECT_EQ(BindErrno(SOCK_DGRAM, "127.0.101.2", port, false), EADDRINUSE);
  EXPECT_EQ(BindErrno(SOCK_STREAM, "0.0.0.0", port, false), EADDRINUSE);
  EXPECT_EQ(BindErrno(SOCK_DGRAM, "0.0.0.0", port, false), EADDRINUSE);
}

TEST(PortReservationTest, AHelperThatReusesAddressesBindsBesideIt) {
  auto held = PortReservation::Reserve("127.0.101.2", PortReservation::Protocols::kTcpAndUdp);
  ASSERT_TRUE(held.ok()) << held.status();
  EXPECT_EQ(BindErrno(SOCK_STREAM, "127.0.101.2", held->port(), true), 0);
  EXPECT_EQ(BindErrno(SOCK_DGRAM, "127.0.101.2", held->port(), true), 0);
}

TEST(PortReservationTest, ReleasedPortIsFree) {
  auto held = PortReservation::Reserve("127.0.101.2", PortReservation::Protocols::kTcpAndUdp);
  ASSERT_TRUE(held.ok()) << held.status();
  int port = held->port();
  held->Release();
  EXPECT_EQ(BindErrno(SOCK_STREAM, "127.0.101.2", port, false), 0);
  EXPECT_EQ(BindErrno(SOCK_DGRAM, "127.0.101.2", port, false), 0);
}

TEST(PortReservationTest, TcpOnlyLeavesUdpAlone) {
  auto held = PortReservation::Reserve("127.0.101.2", PortReservation::Protocols::kTcp);
  ASSERT_TRUE(held.ok()) << held.status();
  EXPECT_EQ(BindErrno(SOCK_STREAM, "127.0.101.2", held->port(), false), EADDRINUSE);
}

TEST(PortReservationTest, RejectsANonAddress) {
  EXPECT_FALSE(PortReservation::Reserve("localhost", PortReservation::Protocols::kTcp).ok());
}

}  // namespace
}  // namespace podlb::demo
