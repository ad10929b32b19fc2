// Merging of a Service's EndpointSlices into per-port endpoint lists (ServiceState).
#include "discovery/kubernetes/service_state.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace podlb {
namespace {

using ::testing::ElementsAre;
using ::testing::UnorderedElementsAre;

SliceEndpoint Ep(const std::string& address, bool ready = true, bool terminating = false,
                 const std::string& pod = "") {
  SliceEndpoint e;
  e.addresses = {address};
  e.ready = ready;
  e.serving = ready || terminating;
  e.terminating = terminating;
  e.pod_name = pod;
  return e;
}

EndpointSlice Slice(const std::string& name, std::vector<SliceEndpoint> endpoints,
                    std::vector<SlicePort> ports = {{"grpc", 8080, "TCP"}},
                    const std::string& address_type = "IPv4") {
  EndpointSlice s;
  s.ns = "default";
  s.name = name;
  s.service_name = "greeter";
  s.address_type = address_type;
  s.ports = std::move(ports);
  s.endpoints = std::move(endpoints);
  return s;
}

Service Svc(std::vector<ServicePort> ports, std::map<std::string, std::string> annotations = {}) {
  Service s;
  s.ns = "default";
  s.name = "greeter";
  s.ports = std::move(ports);
  s.annotations = std::move(annotations);
  return s;
}

std::vector<std::string> KeyStrings(const Publication& p) {
  std::vector<std::string> out;
  for (const auto& k : p.keys) out.push_back(k.ToString());
  return out;
}

std::vector<std::string> HostPorts(const Publication& p) {
  EndpointSet set(p.keys.at(0), 1, p.endpoints);
  std::vector<std::string> out;
  for (const auto& e : set.endpoints()) out.push_back(e.HostPort());
  return out;
}

std::vector<std::string> Eligible(const Publication& p) {
  EndpointSet set(p.keys.at(0), 1, p.endpoints);
  std::vector<std::string> out;
  for (const auto& e : set.endpoints())
    if (e.Health() == EndpointHealth::kEligible) out.push_back(e.address);
  return out;
}

TEST(ServiceStateTest, MergesTwoSlicesAndAnUpdateOfOneKeepsTheOther) {
  ServiceState state("default", "greeter");
  state.SetService(Svc({{"grpc", 80, "TCP"}}));
  state.UpsertSlice(Slice("greeter-a", {Ep("10.0.0.1"), Ep("10.0.0.2")}));
  state.UpsertSlice(Slice("greeter-b", {Ep("10.0.0.3")}));
  auto pubs = state.Build();
  ASSERT_EQ(pubs.size(), 1u);
  EXPECT_THAT(HostPorts(pubs[0]), ElementsAre("10.0.0.1:8080", "10.0.0.2:8080", "10.0.0.3:8080"));

  state.UpsertSlice(Slice("greeter-a", {Ep("10.0.0.9")}));  // replaces only slice a
  pubs = state.Build();
  EXPECT_THAT(HostPorts(pubs[0]), ElementsAre("10.0.0.3:8080", "10.0.0.9:8080"));

  state.DeleteSlice("greeter-b");  // removes just its endpoints
  pubs = state.Build();
  EXPECT_THAT(HostPorts(pubs[0]), ElementsAre("10.0.0.9:8080"));
}

TEST(ServiceStateTest, AddressInTwoSlicesAppearsOnceWithTheBetterHealth) {
  ServiceState state("default", "greeter");
  state.SetService(Svc({{"grpc", 80, "TCP"}}));
  state.UpsertSlice(Slice("greeter-a", {Ep("10.0.0.1", /*ready=*/false)}));
  state.UpsertSlice(Slice("greeter-b", {Ep("10.0.0.1", /*ready=*/true)}));
  auto pubs = state.Build();
  ASSERT_EQ(pubs.size(), 1u);
  EndpointSet set(pubs[0].keys[0], 1, pubs[0].endpoints);
  ASSERT_EQ(set.endpoints().size(), 1u);
  EXPECT_TRUE(set.endpoints()[0].ready);
}

TEST(ServiceStateTest, AllPodsUnreadyPublishesNoEligibleEndpoints) {
  ServiceState state("default", "greeter");
  state.SetService(Svc({{"grpc", 80, "TCP"}}));
  state.UpsertSlice(Slice("greeter-a", {Ep("10.0.0.1"), Ep("10.0.0.2")}));
  EXPECT_EQ(Eligible(state.Build()[0]).size(), 2u);
  state.UpsertSlice(Slice("greeter-a", {Ep("10.0.0.1", false), Ep("10.0.0.2", false, true)}));
  auto pubs = state.Build();
  ASSERT_EQ(pubs.size(), 1u);
  EXPECT_TRUE(Eligible(pubs[0]).empty());
  EXPECT_EQ(pubs[0].endpoints.size(), 2u);  // still listed, with their conditions
}

TEST(ServiceStateTest, NamedPortsResolveToAliasesAndTargetPorts) {
  ServiceState state("default", "greeter");
  state.SetService(Svc({{"grpc", 80, "TCP"}, {"metrics", 9090, "TCP"}}, {{"podlb.io/x", "y"}}));
  state.UpsertSlice(Slice("greeter-a", {Ep("10.0.0.1")},
                          {{"grpc", 50051, "TCP"}, {"metrics", 9091, "TCP"}}));
  auto pubs = state.Build();
  ASSERT_EQ(pubs.size(), 2u);
  EXPECT_THAT(KeyStrings(pubs[0]), ElementsAre("default/greeter:grpc", "default/greeter:80"));
  EXPECT_THAT(HostPorts(pubs[0]), ElementsAre("10.0.0.1:50051"));
  EXPECT_THAT(KeyStrings(pubs[1]), ElementsAre("default/greeter:metrics", "default/greeter:9090"));
  EXPECT_THAT(HostPorts(pubs[1]), ElementsAre("10.0.0.1:9091"));
  EXPECT_EQ(pubs[0].annotations.at("podlb.io/x"), "y");
}

TEST(ServiceStateTest, SingleUnnamedPortIsPublishedByNumberOnly) {
  ServiceState state("default", "greeter");
  state.SetService(Svc({{"", 80, "TCP"}}));
  state.UpsertSlice(Slice("greeter-a", {Ep("10.0.0.1")}, {{"", 8080, "TCP"}}));
  auto pubs = state.Build();
  ASSERT_EQ(pubs.size(), 1u);
  EXPECT_THAT(KeyStrings(pubs[0]), ElementsAre("default/greeter:80"));
  EXPECT_THAT(HostPorts(pubs[0]), ElementsAre("10.0.0.1:8080"));
}

TEST(ServiceStateTest, SliceBeforeServiceThenRepublishedUnderServiceAliases) {
  ServiceState state("default", "greeter");
  state.UpsertSlice(Slice("greeter-a", {Ep("10.0.0.1")}));
  auto pubs = state.TakePublications();
  ASSERT_EQ(pubs.size(), 1u);
  EXPECT_THAT(KeyStrings(pubs[0]), ElementsAre("default/greeter:grpc"));
  EXPECT_THAT(HostPorts(pubs[0]), ElementsAre("10.0.0.1:8080"));

  state.SetService(Svc({{"grpc", 80, "TCP"}}));
  pubs = state.TakePublications();
  ASSERT_EQ(pubs.size(), 1u);
  EXPECT_THAT(KeyStrings(pubs[0]), ElementsAre("default/greeter:grpc", "default/greeter:80"));
}

TEST(ServiceStateTest, UnnamedSlicePortBeforeServiceUsesSlicePortAndVanishedKeysGoEmpty) {
  ServiceState state("default", "greeter");
  state.UpsertSlice(Slice("greeter-a", {Ep("10.0.0.1")}, {{"", 8080, "TCP"}}));
  auto pubs = state.TakePublications();
  ASSERT_EQ(pubs.size(), 1u);
  EXPECT_THAT(KeyStrings(pubs[0]), ElementsAre("default/greeter:8080"));

  state.SetService(Svc({{"", 80, "TCP"}}));
  pubs = state.TakePublications();
  ASSERT_EQ(pubs.size(), 2u);
  EXPECT_THAT(KeyStrings(pubs[0]), ElementsAre("default/greeter:80"));
  // The provisional key is emptied, not left with endpoints nobody updates.
  EXPECT_THAT(KeyStrings(pubs[1]), ElementsAre("default/greeter:8080"));
  EXPECT_TRUE(pubs[1].endpoints.empty());
}

TEST(ServiceStateTest, FqdnSlicesAreSkipped) {
  ServiceState state("default", "greeter");
  state.SetService(Svc({{"grpc", 80, "TCP"}}));
  state.UpsertSlice(Slice("greeter-a", {Ep("10.0.0.1")}));
  state.UpsertSlice(Slice("greeter-f", {Ep("greeter.example.com")}, {{"grpc", 8080, "TCP"}}, "FQDN"));
  auto pubs = state.Build();
  EXPECT_THAT(HostPorts(pubs[0]), ElementsAre("10.0.0.1:8080"));
  EXPECT_EQ(state.slices().size(), 1u);
}

TEST(ServiceStateTest, DeletedServiceAndSlicesEmptyEveryKey) {
  ServiceState state("default", "greeter");
  state.SetService(Svc({{"grpc", 80, "TCP"}}));
  state.UpsertSlice(Slice("greeter-a", {Ep("10.0.0.1")}));
  ASSERT_EQ(state.TakePublications().size(), 1u);
  state.ClearService();
  state.DeleteSlice("greeter-a");
  EXPECT_TRUE(state.Empty());
  auto pubs = state.TakePublications();
  std::vector<std::string> keys;
  for (const auto& p : pubs) {
    EXPECT_TRUE(p.endpoints.empty());
    keys.push_back(p.keys[0].ToString());
  }
  EXPECT_THAT(keys, UnorderedElementsAre("default/greeter:grpc", "default/greeter:80"));
}

}  // namespace
}  // namespace podlb
