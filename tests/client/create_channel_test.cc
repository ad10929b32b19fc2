// podlb::CreateChannel end to end: target parsing, the file source (endpoints file rewritten as
// a rollout would), the DNS source against a real dnsmasq, and the lame channel for bad input.
#include <signal.h>

#include "client/target.h"
#include "client_test_support.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "podlb/podlb.h"
#include "support/dnsmasq.h"
#include "support/process.h"

namespace podlb {
namespace {

using ::testing::HasSubstr;
using testing::CallOnce;
using testing::StartPod;

TEST(ParseTargetTest, AcceptsTheThreeSchemes) {
  auto k8s = client::ParseTarget("kubernetes:///greeter.shop:grpc", "default");
  ASSERT_TRUE(k8s.ok()) << k8s.status();
  EXPECT_EQ(k8s->key, (ServiceKey{"shop", "greeter", "grpc"}));
  auto dns = client::ParseTarget("dns:///greeter.default.svc.cluster.local:50051", "default");
  ASSERT_TRUE(dns.ok()) << dns.status();
  EXPECT_EQ(dns->host, "greeter.default.svc.cluster.local");
  EXPECT_EQ(dns->port, 50051);
  auto file = client::ParseTarget("file:///etc/podlb/endpoints.yaml#default/greeter:grpc", "x");
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_EQ(file->path, "/etc/podlb/endpoints.yaml");
  EXPECT_EQ(file->key, (ServiceKey{"default", "greeter", "grpc"}));
}

TEST(ParseTargetTest, RejectsBadTargetsWithTheRemedy) {
  for (const char* bad : {"greeter:50051", "dns:///greeter", "dns:///greeter:http",
                          "file:///tmp/endpoints.yaml", "file://relative#default/greeter:1"}) {
    auto parsed = client::ParseTarget(bad, "default");
    EXPECT_FALSE(parsed.ok()) << bad;
    EXPECT_THAT(std::string(parsed.status().message()), HasSubstr("dns:///HOST:PORT")) << bad;
  }
}

TEST(CreateChannelTest, BadTargetGivesALameChannelThatSaysWhy) {
  auto channel = CreateChannel("greeter:50051");
  ASSERT_NE(channel, nullptr);
  auto stub = grpc::testing::TestService::NewStub(channel);
  EXPECT_THAT(CallOnce(*stub), HasSubstr("unknown scheme"));
  EXPECT_FALSE(CreateChannelOrError("file:///does/not/exist.yaml#default/greeter:1").ok());
  // Subsetting cannot work with ring hash: refused with the reason and the remedy.
  auto ring = CreateChannelOrError("dns:///greeter.default:50051",
                                   {.policy = LbPolicy::kRingHash, .subset_size = 5});
  ASSERT_FALSE(ring.ok());
  EXPECT_THAT(std::string(ring.status().message()), HasSubstr("subset_size"));
  EXPECT_THAT(std::string(ring.status().message()), HasSubstr("kRingHash"));
}

std::string EndpointsFile(const std::vector<const sandbox::BackendPod*>& pods) {
  std::string yaml = "services:\n  - service: default/greeter:grpc\n    endpoints:\n";
  for (const auto* pod : pods) {
    yaml += "      - {address: " + pod->ip() + ", port: " + std::to_string(pod->port()) +
            ", pod: " + pod->name() + "}\n";
  }
  return yaml;
}

TEST(CreateChannelTest, FollowsAnEndpointsFile) {
  testing::TempDir dir;
  const std::string path = dir.path() + "/endpoints.yaml";
  auto a = StartPod("a", 2);
  auto b = StartPod("b", 3);
  testing::WriteFile(path, EndpointsFile({a.get()}));
  auto channel = CreateChannel("file://" + path + "#default/greeter:grpc",
                               {.policy = LbPolicy::kRoundRobin});
  auto stub = grpc::testing::TestService::NewStub(channel);
  EXPECT_EQ(CallOnce(*stub), "a");

  testing::WriteFile(path + ".tmp", EndpointsFile({a.get(), b.get()}));
  ASSERT_EQ(rename((path + ".tmp").c_str(), path.c_str()), 0);
  testing::Caller caller(channel, 2);
  EXPECT_TRUE(testing::WaitFor([&] { return caller.CountFor("b") > 0; }, std::chrono::seconds(1),
                               "b to take calls after the file changed"));
  caller.Stop();
  EXPECT_THAT(caller.Errors(), ::testing::IsEmpty());
}

TEST(CreateChannelTest, EmptyServiceFailsFastNamingIt) {
  testing::TempDir dir;
  const std::string path = dir.path() + "/endpoints.yaml";
  testing::WriteFile(path, "services:\n  - service: default/greeter:grpc\n    endpoints: []\n");
  auto channel = CreateChannel("file://" + path + "#default/greeter:grpc");
  auto stub = grpc::testing::TestService::NewStub(channel);
  auto start = std::chrono::steady_clock::now();
  std::string result = CallOnce(*stub);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(500));
  EXPECT_THAT(result, HasSubstr("error: 14"));  // UNAVAILABLE
  EXPECT_THAT(result, HasSubstr("default/greeter:grpc"));
}


TEST(CreateChannelTest, DnsSourceBringsNewPodsInWithinOneInterval) {
  // A headless Service gives one port for every pod: bind them all to the same port.
  const auto port = static_cast<uint16_t>(testing::PickFreePort());
  std::vector<std::unique_ptr<sandbox::BackendPod>> pods;
  std::vector<std::string> ips;
  for (int i = 0; i < 6; ++i) {
    pods.push_back(StartPod("pod-" + std::to_string(i), 20 + i, port));
    ips.push_back(pods.back()->ip());
  }
  testing::TempDir dir;
  testing::Dnsmasq dns(dir.path(), {ips[0], ips[1], ips[2]});
  const auto interval = std::chrono::milliseconds(300);
  auto channel = CreateChannel(
      "dns:///greeter.default.svc.cluster.local:" + std::to_string(port),
      {.initial_wait = std::chrono::seconds(10), .dns_interval = interval, .dns_servers = dns.server()});
  testing::Caller caller(channel, 4);
  ASSERT_TRUE(testing::WaitFor(
      [&] { return caller.CountFor("pod-0") && caller.CountFor("pod-1") && caller.CountFor("pod-2"); },
      std::chrono::seconds(10), "the first three pods to take calls"));

  dns.WriteHosts(ips);
  dns.Reload();
  // dnsmasq re-reads its hosts file on SIGHUP asynchronously; allow it a moment on top of one
  // resolution interval and the per-call time.
  const auto budget = interval + std::chrono::milliseconds(500);
  for (int i = 3; i < 6; ++i) {
    std::string name = pods[i]->name();
    EXPECT_TRUE(testing::WaitFor([&] { return caller.CountFor(name) > 0; }, budget,
                                 name + " to take calls within one DNS interval"));
  }
  caller.Stop();
  EXPECT_THAT(caller.Errors(), ::testing::IsEmpty());
}

}  // namespace
}  // namespace podlb
