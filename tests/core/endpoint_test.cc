#include "core/endpoint.h"

#include "gtest/gtest.h"

namespace podlb {
namespace {

TEST(ServiceKeyTest, ParsesEveryFormClientsWrite) {
  for (const char* text : {"default/greeter:grpc", "greeter.default:grpc", "greeter.default.svc:grpc",
                           "greeter.default.svc.cluster.local:grpc", "greeter:grpc"}) {
    auto key = ServiceKey::Parse(text);
    ASSERT_TRUE(key.ok()) << text << ": " << key.status();
    EXPECT_EQ(key->ToString(), "default/greeter:grpc") << text;
  }
  auto numbered = ServiceKey::Parse("greeter.prod.svc.example.org:50051");
  ASSERT_TRUE(numbered.ok());
  EXPECT_EQ(numbered->ns, "prod");
  EXPECT_EQ(numbered->port, "50051");
}

TEST(ServiceKeyTest, RejectsMalformedNamesWithAClearMessage) {
  for (const char* text : {"greeter", "default/greeter:", ":80", "greeter.default.pods:80", "/x:1"}) {
    auto key = ServiceKey::Parse(text);
    ASSERT_FALSE(key.ok()) << text;
    EXPECT_NE(key.status().message().find("namespace/name:port"), std::string::npos);
  }
}

TEST(EndpointTest, HealthFollowsSliceConditions) {
  Endpoint e;
  e.ready = true;
  e.serving = true;
  EXPECT_EQ(e.Health(), EndpointHealth::kEligible);
  e.ready = false;
  e.terminating = true;
  EXPECT_EQ(e.Health(), EndpointHealth::kDraining);
  e.serving = false;
  EXPECT_EQ(e.Health(), EndpointHealth::kExcluded);
  e.terminating = false;
  e.serving = true;  // starting, not ready yet
  EXPECT_EQ(e.Health(), EndpointHealth::kExcluded);
}

TEST(EndpointTest, HostPortBracketsIpv6) {
  Endpoint v4{.address = "10.0.0.1", .port = 80};
  Endpoint v6{.address = "fd00::1", .port = 80};
  EXPECT_EQ(v4.HostPort(), "10.0.0.1:80");
  EXPECT_EQ(v6.HostPort(), "[fd00::1]:80");
}

TEST(EndpointSetTest, SortsAndKeepsTheHealthiestDuplicate) {
  Endpoint a{.address = "10.0.0.2", .port = 80, .pod_name = "b", .ready = true, .serving = true};
  Endpoint stale{.address = "10.0.0.2", .port = 80, .pod_name = "b"};
  Endpoint c{.address = "10.0.0.1", .port = 80, .pod_name = "a", .ready = true};
  EndpointSet set({"ns", "svc", "80"}, 1, {a, stale, c});
  ASSERT_EQ(set.endpoints().size(), 2u);
  EXPECT_EQ(set.endpoints()[0].address, "10.0.0.1");
  EXPECT_TRUE(set.endpoints()[1].ready);
  EXPECT_EQ(set.CountWithHealth(EndpointHealth::kEligible), 2u);
}

}  // namespace
}  // namespace podlb
