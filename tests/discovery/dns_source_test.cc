#include "discovery/dns/dns_source.h"

#include <signal.h>

#include <deque>
#include <fstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "support/dnsmasq.h"
#include "support/process.h"
#include "support/registry_waiter.h"

namespace podlb {
namespace {

using ::testing::ElementsAre;
using testing::EligibleAddresses;

// Answers from a script, one answer per Resolve call; the last answer repeats.
class ScriptedResolver : public DnsResolver {
 public:
  explicit ScriptedResolver(std::deque<absl::StatusOr<std::vector<std::string>>> answers)
      : answers_(std::move(answers)) {}
  absl::StatusOr<std::vector<std::string>> Resolve(const std::string&) override {
    auto answer = answers_.front();
    if (answers_.size() > 1) answers_.pop_front();
    return answer;
  }

 private:
  std::deque<absl::StatusOr<std::vector<std::string>>> answers_;
};

DnsSourceOptions Options() {
  return DnsSourceOptions{.host = "greeter.default.svc.cluster.local",
                          .port = 50051,
                          .key = {"default", "greeter", "50051"},
                          .interval = std::chrono::milliseconds(50)};
}

TEST(DnsSourceTest, ServfailAndNxdomainKeepTheLastGoodSet) {
  Registry registry;
  DnsSource source(Options(),
                   std::make_unique<ScriptedResolver>(
                       std::deque<absl::StatusOr<std::vector<std::string>>>{
                           std::vector<std::string>{"10.0.0.1", "10.0.0.2"},
                           absl::UnavailableError("SERVFAIL"), absl::NotFoundError("NXDOMAIN")}),
                   registry);
  source.ResolveOnce();
  ASSERT_TRUE(source.HasSynced());
  source.ResolveOnce();
  EXPECT_EQ(source.Health().code(), absl::StatusCode::kUnavailable);
  source.ResolveOnce();
  EXPECT_EQ(source.Health().code(), absl::StatusCode::kNotFound);
  auto set = registry.Current(Options().key);
  ASSERT_NE(set, nullptr);
  EXPECT_THAT(EligibleAddresses(*set), ElementsAre("10.0.0.1", "10.0.0.2"));
  EXPECT_EQ(set->endpoints()[0].port, 50051);
}

TEST(DnsSourceTest, NeverSyncedWhileEveryAnswerFails) {
  Registry registry;
  DnsSource source(Options(),
                   std::make_unique<ScriptedResolver>(
                       std::deque<absl::StatusOr<std::vector<std::string>>>{
                           absl::UnavailableError("timeout")}),
                   registry);
  source.ResolveOnce();
  EXPECT_FALSE(source.HasSynced());
  EXPECT_EQ(registry.Current(Options().key), nullptr);
}

TEST(CaresResolverTest, RejectsABadServerListClearly) {
  auto resolver = MakeCaresResolver({.servers = "not a server"});
  ASSERT_FALSE(resolver.ok());
  EXPECT_THAT(std::string(resolver.status().message()), ::testing::HasSubstr("host:port"));
}


TEST(DnsSourceIntegrationTest, FollowsARealDnsServerAndSurvivesItsDeath) {
  testing::TempDir dir;
  testing::Dnsmasq dns(dir.path(), {"127.0.0.2", "127.0.0.3", "127.0.0.4"});
  auto resolver = MakeCaresResolver({.servers = dns.server(),
                                     .timeout = std::chrono::milliseconds(200),
                                     .tries = 1});
  ASSERT_TRUE(resolver.ok()) << resolver.status();
  Registry registry;
  testing::RegistryWaiter waiter(registry, Options().key);
  DnsSource source(Options(), std::move(*resolver), registry);
  ASSERT_TRUE(source.Start().ok());
  // dnsmasq may still be binding when the first query goes out; the source retries each interval.
  ASSERT_TRUE(waiter.WaitFor([](const EndpointSet& s) { return s.endpoints().size() == 3; },
                             std::chrono::seconds(10), "3 addresses"));

  dns.WriteHosts({"127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5", "127.0.0.6"});
  dns.Reload();
  ASSERT_TRUE(waiter.WaitFor([](const EndpointSet& s) { return s.endpoints().size() == 5; },
                             std::chrono::seconds(10), "5 addresses after the scale-up"));

  dns.Kill();
  ASSERT_TRUE(testing::WaitFor([&] { return !source.Health().ok(); }, std::chrono::seconds(10),
                               "the source to notice the DNS server is gone"));
  EXPECT_EQ(registry.Current(Options().key)->endpoints().size(), 5u);
  source.Stop();
}

}  // namespace
}  // namespace podlb
