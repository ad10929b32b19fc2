#include "admin/admin_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace podlb {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

std::string Exchange(int port, const std::string& request) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) return "connect failed";
  send(fd, request.data(), request.size(), MSG_NOSIGNAL);
  shutdown(fd, SHUT_WR);
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = recv(fd, buf, sizeof buf, 0)) > 0) out.append(buf, n);
  close(fd);
  return out;
}

TEST(AdminServerTest, ServesRegisteredPathsWithTheirQuery) {
  AdminServer server;
  server.Handle("/readyz", [](const std::string& query) {
    return AdminResponse{.status = 503, .body = "not ready: " + query};
  });
  ASSERT_TRUE(server.Start("127.0.0.1:0").ok());
  std::string reply = Exchange(server.port(), "GET /readyz?verbose=1 HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_THAT(reply, StartsWith("HTTP/1.1 503 Service Unavailable\r\n"));
  EXPECT_THAT(reply, HasSubstr("not ready: verbose=1"));
}

TEST(AdminServerTest, UnknownPathListsTheAvailableOnes) {
  AdminServer server;
  server.Handle("/healthz", [](const std::string&) { return AdminResponse{.body = "ok"}; });
  ASSERT_TRUE(server.Start("127.0.0.1:0").ok());
  std::string reply = Exchange(server.port(), "GET /nope HTTP/1.1\r\n\r\n");
  EXPECT_THAT(reply, StartsWith("HTTP/1.1 404"));
  EXPECT_THAT(reply, HasSubstr("/healthz"));
}

TEST(AdminServerTest, GarbageGetsA400AndTheServerKeepsServing) {
  AdminServer server;
  server.Handle("/healthz", [](const std::string&) { return AdminResponse{.body = "ok"}; });
  ASSERT_TRUE(server.Start("127.0.0.1:0").ok());
  EXPECT_THAT(Exchange(server.port(), std::string(20000, 'x')), StartsWith("HTTP/1.1 400"));
  EXPECT_THAT(Exchange(server.port(), "POST /healthz HTTP/1.1\r\n\r\n"), StartsWith("HTTP/1.1 405"));
  EXPECT_THAT(Exchange(server.port(), "GET /healthz HTTP/1.1\r\n\r\n"), HasSubstr("\r\n\r\nok"));
}

TEST(AdminServerTest, BadAddressesAreRejectedWithTheRemedy) {
  AdminServer server;
  auto status = server.Start("localhost:abc");
  ASSERT_FALSE(status.ok());
  EXPECT_THAT(std::string(status.message()), HasSubstr("port \"abc\" is not a number"));
  status = server.Start("localhost:9901");
  ASSERT_FALSE(status.ok());
  EXPECT_THAT(std::string(status.message()), HasSubstr("must be an IPv4 address, e.g. 127.0.0.1:9901"));
  AdminServer taken;
  ASSERT_TRUE(taken.Start("127.0.0.1:0").ok());
  AdminServer second;
  auto busy = second.Start("127.0.0.1:" + std::to_string(taken.port()));
  ASSERT_FALSE(busy.ok());
  EXPECT_THAT(std::string(busy.message()), HasSubstr("cannot listen"));
}

}  // namespace
}  // namespace podlb
