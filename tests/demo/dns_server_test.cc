// DnsServer on a real dnsmasq. Ready means that very process answers the name with the written
// addresses over UDP and over TCP; a port that something else holds is a start failure that says
// so. A start that only checked "the UDP port can no longer be bound" called dnsmasq
// ready while another socket held its TCP port: dnsmasq had bound UDP, failed on TCP and was
// exiting, and every lookup then failed with "Could not contact DNS servers".
#include "demo/dns_server.h"

#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/host_port.h"
#include "discovery/dns/dns_resolver.h"
#include "support/dnsmasq.h"
#include "support/process.h"

namespace podlb::demo {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr char kName[] = "greeter.default.svc.cluster.local";

std::vector<std::string> Lookup(const std::string& server, bool use_tcp) {
  auto resolver = MakeCaresResolver({.servers = server,
                                     .timeout = std::chrono::milliseconds(500),
                                     .tries = 1,
                                     .use_tcp = use_tcp});
  if (!resolver.ok()) return {resolver.status().ToString()};
  auto answer = (*resolver)->Resolve(kName);
  if (!answer.ok()) return {answer.status().ToString()};
  return *answer;
}

sockaddr_in Loopback(const char* ip, int port) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  inet_pton(AF_INET, ip, &addr.sin_addr);
  return addr;
}

int BoundPort(int fd) {
  sockaddr_in addr{};
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  return ntohs(addr.sin_port);
}

// An established TCP connection whose local end is 127.0.0.1:port(), bound without
// SO_REUSEADDR: what an outgoing connection of libcurl or the ClusterIP forwarder looks like.
class EstablishedConnection {
 public:
  EstablishedConnection() {
    listener_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in server = Loopback("127.0.0.3", 0);
    bind(listener_, reinterpret_cast<sockaddr*>(&server), sizeof(server));
    listen(listener_, 1);
    socklen_t len = sizeof(server);
    getsockname(listener_, reinterpret_cast<sockaddr*>(&server), &len);
    client_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in local = Loopback("127.0.0.1", 0);
    bind(client_, reinterpret_cast<sockaddr*>(&local), sizeof(local));
    connected_ = connect(client_, reinterpret_cast<sockaddr*>(&server), sizeof(server)) == 0;
  }
  ~EstablishedConnection() {
    close(client_);
    close(listener_);
  }
  bool connected() const { return connected_; }
  int port() const { return BoundPort(client_); }

 private:
  int listener_ = -1;
  int client_ = -1;
  bool connected_ = false;
};

bool UdpPortFree(int port) {
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr = Loopback("127.0.0.1", port);
  bool free = bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  close(fd);
  return free;
}

TEST(DnsServerTest, ReadyMeansAnsweringOverUdpAndTcpAndItFollowsChanges) {
  testing::TempDir dir;
  DnsServer dns({.name = kName, .dir = dir.path(), .listen_ip = "127.0.101.1"});
  auto status = dns.Start({"127.0.7.3", "127.0.7.2"});
  ASSERT_TRUE(status.ok()) << status;
  EXPECT_THAT(dns.server(), HasSubstr("127.0.101.1:"));
  // No waiting: Start returned, so it answers now.
  EXPECT_THAT(Lookup(dns.server(), false), ElementsAre("127.0.7.2", "127.0.7.3"));
  EXPECT_THAT(Lookup(dns.server(), true), ElementsAre("127.0.7.2", "127.0.7.3"));

  dns.SetAddresses({"127.0.7.4"});
  // SIGHUP is asynchronous and dnsmasq says nothing back to the sender: poll the answer.
  EXPECT_TRUE(testing::WaitFor(
      [&] { return Lookup(dns.server(), false) == std::vector<std::string>{"127.0.7.4"}; },
      std::chrono::seconds(5), "dnsmasq to answer with the new address"));
  dns.Stop();
  EXPECT_THAT(Lookup(dns.server(), false)[0], HasSubstr("UNAVAILABLE"));
}

TEST(DnsServerTest, StartFailsWhenAnotherSocketHoldsItsTcpPort) {
  EstablishedConnection connection;
  ASSERT_TRUE(connection.connected());
  // The UDP port is free: the old readiness check, "UDP can no longer be bound", passed here as
  // soon as dnsmasq bound UDP, in the moment before it failed on TCP and exited.
  ASSERT_TRUE(UdpPortFree(connection.port()));
  testing::TempDir dir;
  DnsServer dns({.name = kName, .dir = dir.path(), .port = connection.port()});
  auto status = dns.Start({"127.0.7.2"});
  ASSERT_FALSE(status.ok()) << "reported ready on a port it cannot serve";
  std::string message(status.message());
  EXPECT_THAT(message, HasSubstr("127.0.0.1:" + std::to_string(connection.port())));
  EXPECT_THAT(message, HasSubstr("exited with status 2 at start"));
  EXPECT_THAT(message, HasSubstr("Address already in use"));
}

TEST(DnsServerTest, StartFailsWhenAnotherSocketHoldsItsUdpPort) {
  int udp = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr = Loopback("127.0.0.1", 0);
  ASSERT_EQ(bind(udp, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  testing::TempDir dir;
  DnsServer dns({.name = kName, .dir = dir.path(), .port = BoundPort(udp)});
  auto status = dns.Start({"127.0.7.2"});
  close(udp);
  ASSERT_FALSE(status.ok()) << "reported ready on a port it cannot serve";
  EXPECT_THAT(std::string(status.message()), HasSubstr("Address already in use"));
}

TEST(DnsServerTest, StartFailsWhenAnotherDnsServerOwnsThePort) {
  // What an earlier run could have left behind: a DNS server answering other addresses.
  testing::TempDir other_dir;
  testing::Dnsmasq other(other_dir.path(), {"127.0.9.9"});
  ASSERT_TRUE(testing::WaitFor(
      [&] { return Lookup(other.server(), false) == std::vector<std::string>{"127.0.9.9"}; },
      std::chrono::seconds(5), "the other dnsmasq to answer"));
  auto other_address = ParseHostPort(other.server());
  ASSERT_TRUE(other_address.ok()) << other_address.status();
  int port = other_address->port;
  testing::TempDir dir;
  DnsServer dns({.name = kName, .dir = dir.path(), .port = port});
  auto status = dns.Start({"127.0.7.2"});
  ASSERT_FALSE(status.ok()) << "took another server's answers for its own";
  EXPECT_THAT(std::string(status.message()), HasSubstr("Address already in use"));
  EXPECT_THAT(Lookup(other.server(), false), ElementsAre("127.0.9.9"));
}

TEST(DnsServerTest, PicksAPortThatIsFreeBesideABusyNeighbourhood) {
  // Ten servers on one address, started one after the other: each reserves its own port.
  std::vector<std::unique_ptr<testing::TempDir>> dirs;
  std::vector<std::unique_ptr<DnsServer>> servers;
  for (int i = 0; i < 10; ++i) {
    dirs.push_back(std::make_unique<testing::TempDir>());
    servers.push_back(std::make_unique<DnsServer>(
        DnsServerOptions{.name = kName, .dir = dirs.back()->path(), .listen_ip = "127.0.101.1"}));
    std::string address = "127.0.7." + std::to_string(10 + i);
    auto status = servers.back()->Start({address});
    ASSERT_TRUE(status.ok()) << status;
  }
  for (int i = 0; i < 10; ++i) {
    EXPECT_THAT(Lookup(servers[i]->server(), true),
                ElementsAre("127.0.7." + std::to_string(10 + i)));
  }
}

TEST(DnsServerTest, RefusesToStartWithoutAnAddressToCheck) {
  testing::TempDir dir;
  DnsServer dns({.name = kName, .dir = dir.path()});
  EXPECT_TRUE(absl::IsInvalidArgument(dns.Start({})));
}

}  // namespace
}  // namespace podlb::demo
