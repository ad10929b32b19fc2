// Unit tests of the xDS resource builders and the Service policy: the rules real clients
// enforce (locality weights, contiguous priorities, unique addresses, router last).
#include "xds/resource_builders.h"

#include "envoy/config/core/v3/base.pb.h"
#include "envoy/extensions/filters/http/router/v3/router.pb.h"
#include "envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.pb.h"
#include "gtest/gtest.h"
#include "xds/bootstrap.h"
#include "xds/client_profile.h"
#include "nlohmann/json.hpp"

namespace podlb::xds {
namespace {

using envoy::config::endpoint::v3::ClusterLoadAssignment;

Endpoint Ep(std::string address, std::string zone, bool ready = true, bool serving = true,
            bool terminating = false, uint32_t weight = 1) {
  Endpoint e;
  e.address = std::move(address);
  e.port = 50051;
  e.pod_name = "pod-" + e.address;
  e.zone = std::move(zone);
  e.ready = ready;
  e.serving = serving;
  e.terminating = terminating;
  e.weight = weight;
  return e;
}

const ServiceKey kKey{"default", "greeter", "50051"};

void ExpectValidForClients(const ClusterLoadAssignment& cla) {
  std::set<uint32_t> priorities;
  std::set<std::string> addresses;
  for (const auto& locality : cla.endpoints()) {
    EXPECT_TRUE(locality.has_load_balancing_weight()) << cla.DebugString();
    EXPECT_GT(locality.load_balancing_weight().value(), 0u);
    priorities.insert(locality.priority());
    for (const auto& lb : locality.lb_endpoints()) {
      const auto& sa = lb.endpoint().address().socket_address();
      EXPECT_TRUE(addresses.insert(sa.address() + ":" + std::to_string(sa.port_value())).second);
    }
  }
  uint32_t expect = 0;
  for (uint32_t p : priorities) EXPECT_EQ(p, expect++) << "priorities must be 0..N without gaps";
}

TEST(ClusterLoadAssignmentBuilderTest, OneWeightedLocalityAndHealthMapping) {
  EndpointSet set(kKey, 1,
                  {Ep("10.0.0.1", "a"), Ep("10.0.0.2", "a", true, true, false, 3),
                   Ep("10.0.0.3", "b", false, true, true),    // terminating, serving: draining
                   Ep("10.0.0.4", "b", false, false, true),   // not serving: absent
                   Ep("10.0.0.5", "")});
  ClusterLoadAssignment cla = ClusterLoadAssignmentBuilder("default/greeter:50051", set).Build();
  ExpectValidForClients(cla);
  // Without zone awareness every zone shares one locality, so the client's round robin is exact
  // instead of a random pick between per-zone localities.
  ASSERT_EQ(cla.endpoints_size(), 1);
  const auto& locality = cla.endpoints(0);
  EXPECT_EQ(locality.priority(), 0u);
  EXPECT_EQ(locality.load_balancing_weight().value(), 6u);  // 1 + 3 + 1 (draining) + 1
  ASSERT_EQ(locality.lb_endpoints_size(), 4);
  std::map<std::string, envoy::config::core::v3::HealthStatus> health;
  for (const auto& lb : locality.lb_endpoints())
    health[lb.endpoint().address().socket_address().address()] = lb.health_status();
  EXPECT_EQ(health.count("10.0.0.4"), 0u);
  EXPECT_EQ(health["10.0.0.3"], envoy::config::core::v3::DRAINING);
  EXPECT_EQ(health["10.0.0.1"], envoy::config::core::v3::HEALTHY);
}

TEST(ClusterLoadAssignmentBuilderTest, ZoneAwarePrioritiesAreContiguous) {
  EndpointSet set(kKey, 1, {Ep("10.0.0.1", "a"), Ep("10.0.0.2", "b"), Ep("10.0.0.3", "c")});
  ClusterLoadAssignment cla = ClusterLoadAssignmentBuilder("c", set, "b").Build();
  ExpectValidForClients(cla);
  ASSERT_EQ(cla.endpoints_size(), 2);
  for (const auto& l : cla.endpoints()) {
    for (const auto& lb : l.lb_endpoints()) {
      bool in_zone = lb.endpoint().address().socket_address().address() == "10.0.0.2";
      EXPECT_EQ(l.priority(), in_zone ? 0u : 1u);
    }
  }
  // The client's zone has no endpoint: no empty priority 0, everything at 0.
  ClusterLoadAssignment elsewhere = ClusterLoadAssignmentBuilder("c", set, "z").Build();
  ExpectValidForClients(elsewhere);
  ASSERT_EQ(elsewhere.endpoints_size(), 1);
  EXPECT_EQ(elsewhere.endpoints(0).priority(), 0u);
  EXPECT_EQ(elsewhere.endpoints(0).lb_endpoints_size(), 3);
}

TEST(ClusterLoadAssignmentBuilderTest, NoEndpointsGivesEmptyAssignment) {
  EndpointSet set(kKey, 1, {Ep("10.0.0.4", "b", false, false, false)});
  ClusterLoadAssignment cla = ClusterLoadAssignmentBuilder("c", set).Build();
  EXPECT_EQ(cla.cluster_name(), "c");
  EXPECT_EQ(cla.endpoints_size(), 0);
}

TEST(ListenerBuilderTest, ApiListenerWithInlineRouteAndRouterLast) {
  ServicePolicy policy = balancing::ParseServicePolicy({{"podlb.io/lb-policy", "ring_hash"},
                                             {"podlb.io/hash-header", "X-User"},
                                             {"podlb.io/timeout", "1.5s"},
                                             {"podlb.io/retry-on-unavailable", "true"}});
  EXPECT_TRUE(policy.problems.empty());
  auto listener =
      ListenerBuilder("greeter.default:50051", "default/greeter:50051", policy,
                      LbPolicy::kRingHash).Build();
  EXPECT_EQ(listener.name(), "greeter.default:50051");
  envoy::extensions::filters::network::http_connection_manager::v3::HttpConnectionManager hcm;
  ASSERT_TRUE(listener.api_listener().api_listener().UnpackTo(&hcm));
  ASSERT_GT(hcm.http_filters_size(), 0);
  EXPECT_TRUE(hcm.http_filters(hcm.http_filters_size() - 1)
                  .typed_config()
                  .Is<envoy::extensions::filters::http::router::v3::Router>());
  ASSERT_EQ(hcm.route_config().virtual_hosts_size(), 1);
  const auto& action = hcm.route_config().virtual_hosts(0).routes(0).route();
  EXPECT_EQ(action.cluster(), "default/greeter:50051");
  ASSERT_EQ(action.hash_policy_size(), 1);
  EXPECT_EQ(action.hash_policy(0).header().header_name(), "x-user");
  EXPECT_EQ(action.max_stream_duration().max_stream_duration().nanos(), 500000000);
  EXPECT_EQ(action.retry_policy().retry_on(), "unavailable");
  EXPECT_EQ(action.retry_policy().num_retries().value(), 2u);
}

TEST(ClusterBuilderTest, EdsOverAdsWithPolicy) {
  ServicePolicy policy = balancing::ParseServicePolicy({{"podlb.io/outlier-detection", "true"}});
  auto cluster = ClusterBuilder("default/greeter:50051", policy, LbPolicy::kRingHash, true).Build();
  EXPECT_EQ(cluster.type(), envoy::config::cluster::v3::Cluster::EDS);
  EXPECT_TRUE(cluster.eds_cluster_config().eds_config().has_ads());
  EXPECT_EQ(cluster.eds_cluster_config().service_name(), "default/greeter:50051");
  EXPECT_EQ(cluster.lb_policy(), envoy::config::cluster::v3::Cluster::RING_HASH);
  EXPECT_TRUE(cluster.has_ring_hash_lb_config());
  EXPECT_TRUE(cluster.has_outlier_detection());
}

TEST(ServicePolicyTest, BadAnnotationsFallBackAndAreReported) {
  ServicePolicy policy = balancing::ParseServicePolicy({{"podlb.io/lb-policy", "maglev"},
                                             {"podlb.io/timeout", "soon"},
                                             {"podlb.io/zone-aware", "true"}});
  EXPECT_EQ(policy.lb_policy, balancing::PolicyKind::kRoundRobin);
  EXPECT_FALSE(policy.timeout);
  EXPECT_TRUE(policy.zone_aware);
  EXPECT_EQ(policy.problems.size(), 2u);
}

TEST(ServicePolicyTest, PeakEwmaGoesToEveryXdsClientAsRoundRobin) {
  ServicePolicy policy = balancing::ParseServicePolicy({{"podlb.io/lb-policy", "peak_ewma"}});
  for (const char* agent : {"gRPC C-core linux", "grpc-node-js", "envoy", "gRPC Java"}) {
    envoy::config::core::v3::Node node;
    node.set_user_agent_name(agent);
    EXPECT_EQ(EffectiveLbPolicy(policy, ProfileFromNode(node)), LbPolicy::kRoundRobin) << agent;
  }
}

TEST(ClusterBuilderTest, OutlierAnnotationsBecomeTheClustersOutlierDetection) {
  ServicePolicy policy = balancing::ParseServicePolicy(
      {{"podlb.io/outlier-detection", "true"},
       {"podlb.io/outlier-interval", "1s"},
       {"podlb.io/outlier-failure-percentage", "30"},
       {"podlb.io/outlier-minimum-requests", "5"},
       {"podlb.io/outlier-base-ejection", "10s"},
       {"podlb.io/outlier-max-ejection-percent", "34"}});
  ASSERT_TRUE(policy.problems.empty());
  auto cluster = ClusterBuilder("default/greeter:50051", policy, LbPolicy::kRoundRobin, true).Build();
  ASSERT_TRUE(cluster.has_outlier_detection());
  const auto& od = cluster.outlier_detection();
  EXPECT_EQ(od.interval().seconds(), 1);
  EXPECT_EQ(od.base_ejection_time().seconds(), 10);
  EXPECT_EQ(od.failure_percentage_threshold().value(), 30u);
  EXPECT_EQ(od.failure_percentage_request_volume().value(), 5u);
  EXPECT_EQ(od.max_ejection_percent().value(), 34u);
  EXPECT_EQ(od.enforcing_success_rate().value(), 0u);
  // Not annotated, or a client that cannot take it: no outlier detection at all.
  auto plain = ClusterBuilder("default/greeter:50051", balancing::ParseServicePolicy({}),
                              LbPolicy::kRoundRobin, true)
                   .Build();
  EXPECT_FALSE(plain.has_outlier_detection());
  auto withheld = ClusterBuilder("default/greeter:50051", policy, LbPolicy::kRoundRobin, false).Build();
  EXPECT_FALSE(withheld.has_outlier_detection());
}

TEST(ServicePolicyTest, LeastRequestFallsBackForCCore) {
  ServicePolicy policy = balancing::ParseServicePolicy({{"podlb.io/lb-policy", "least_request"}});
  envoy::config::core::v3::Node node;
  node.set_user_agent_name("gRPC C-core linux");
  node.set_user_agent_version("1.51.1");
  EXPECT_EQ(EffectiveLbPolicy(policy, ProfileFromNode(node)), LbPolicy::kRoundRobin);
  node.set_user_agent_name("gRPC Java");
  EXPECT_EQ(EffectiveLbPolicy(policy, ProfileFromNode(node)), LbPolicy::kLeastRequest);
  node.set_user_agent_name("gRPC Node Pure JS");
  (*node.mutable_metadata()->mutable_fields())["podlb.io/capabilities"].set_string_value(
      "least_request");
  EXPECT_EQ(EffectiveLbPolicy(policy, ProfileFromNode(node)), LbPolicy::kLeastRequest);
}

// C-core 1.50/1.51 crash in ring_hash (grpc/grpc#31766): round robin instead, unless an
// operator vouches for the build; later C-core and other clients keep ring hash.
TEST(ServicePolicyTest, RingHashFallsBackForCrashingCCore) {
  ServicePolicy policy = balancing::ParseServicePolicy(
      {{"podlb.io/lb-policy", "ring_hash"}, {"podlb.io/hash-header", "x-user"}});
  envoy::config::core::v3::Node node;
  node.set_user_agent_name("gRPC C-core linux");  // as Debian's libgrpc 1.51.1 sends it
  node.set_user_agent_version("C-core 29.0.0");
  EXPECT_EQ(EffectiveLbPolicy(policy, ProfileFromNode(node)), LbPolicy::kRoundRobin);
  EXPECT_NE(ProfileFromNode(node).note.find("grpc/grpc#31766"), std::string::npos);
  node.set_user_agent_version("C-core 30.0.0");  // 1.52, fixed
  EXPECT_EQ(EffectiveLbPolicy(policy, ProfileFromNode(node)), LbPolicy::kRingHash);
  node.set_user_agent_version("C-core 28.1.0");
  (*node.mutable_metadata()->mutable_fields())["podlb.io/capabilities"].set_string_value(
      "ring_hash");
  EXPECT_EQ(EffectiveLbPolicy(policy, ProfileFromNode(node)), LbPolicy::kRingHash);
  node.set_user_agent_name("gRPC Node Pure JS");
  node.set_user_agent_version("1.14.1");
  node.clear_metadata();
  EXPECT_EQ(EffectiveLbPolicy(policy, ProfileFromNode(node)), LbPolicy::kRingHash);
}

TEST(BootstrapTest, LocalityAlwaysPresent) {
  auto json = nlohmann::json::parse(BuildBootstrapJson({.server = "127.0.0.1:1", .node_id = "n"}));
  EXPECT_EQ(json["xds_servers"][0]["server_uri"], "127.0.0.1:1");
  EXPECT_EQ(json["xds_servers"][0]["channel_creds"][0]["type"], "insecure");
  // With TLS: A65's "tls" first, then google_default for clients that predate it.
  auto tls = nlohmann::json::parse(
      BuildBootstrapJson({.server = "127.0.0.1:1", .node_id = "n", .tls = true}));
  EXPECT_EQ(tls["xds_servers"][0]["channel_creds"][0]["type"], "tls");
  EXPECT_EQ(tls["xds_servers"][0]["channel_creds"][1]["type"], "google_default");
  EXPECT_EQ(json["xds_servers"][0]["server_features"][1], "ignore_resource_deletion");
  EXPECT_TRUE(json["node"]["locality"].is_object());
  EXPECT_EQ(json["node"]["id"], "n");
}

}  // namespace
}  // namespace podlb::xds
