#include "discovery/file/file_source.h"

#include "discovery/file/endpoints_file.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "support/process.h"
#include "support/registry_waiter.h"

namespace podlb {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testing::EligibleAddresses;

constexpr char kTwoPods[] = R"(
services:
  - service: default/greeter:grpc
    aliases: [default/greeter:50051]
    annotations: {podlb.io/lb-policy: round_robin}
    endpoints:
      - {address: 127.0.0.2, port: 50051, pod: greeter-a, zone: z1}
      - {address: 127.0.0.3, port: 50051, pod: greeter-b, ready: false, serving: true, terminating: true}
)";

TEST(EndpointsFileTest, ParsesYamlWithDefaults) {
  auto services = ParseEndpointsFile(kTwoPods, "endpoints.yaml");
  ASSERT_TRUE(services.ok()) << services.status();
  ASSERT_EQ(services->size(), 1u);
  const auto& svc = (*services)[0];
  EXPECT_EQ(svc.keys.size(), 2u);
  EXPECT_EQ(svc.annotations.at("podlb.io/lb-policy"), "round_robin");
  EXPECT_TRUE(svc.endpoints[0].ready);
  EXPECT_TRUE(svc.endpoints[0].serving);
  EXPECT_EQ(svc.endpoints[1].Health(), EndpointHealth::kDraining);
}

TEST(EndpointsFileTest, ParsesJsonToo) {
  auto services = ParseEndpointsFile(
      R"({"services":[{"service":"default/greeter:grpc","endpoints":[{"address":"::1","port":1}]}]})",
      "e.json");
  ASSERT_TRUE(services.ok()) << services.status();
  EXPECT_EQ((*services)[0].endpoints[0].HostPort(), "[::1]:1");
}

// JSON content goes through a JSON parser, YAML through yaml-cpp; a file means the same in both,
// including the scalars YAML reads from text (a quoted port, yes/no, a hex number).
TEST(EndpointsFileTest, JsonAndYamlReadScalarsAlike) {
  auto json = ParseEndpointsFile(R"({"services": [{"service": "default/greeter:grpc",
      "aliases": ["default/greeter:50051"], "annotations": {"podlb.io/weight": 3},
      "endpoints": [{"address": "10.0.0.1", "port": "0x1F90", "pod": 7, "ready": "no",
                     "serving": "Yes", "terminating": false, "weight": "2", "zone": null}]}]})",
                                 "e.json");
  auto yaml = ParseEndpointsFile(R"(
services:
  - service: default/greeter:grpc
    aliases: [default/greeter:50051]
    annotations: {podlb.io/weight: 3}
    endpoints:
      - {address: 10.0.0.1, port: 0x1F90, pod: 7, ready: no, serving: Yes, terminating: FALSE,
         weight: 2, zone: ~}
)",
                                 "e.yaml");
  for (const auto* services : {&json, &yaml}) {
    ASSERT_TRUE(services->ok()) << services->status();
    ASSERT_EQ((*services)->size(), 1u);
    const FileService& svc = (**services)[0];
    EXPECT_EQ(svc.keys, (std::vector<ServiceKey>{{"default", "greeter", "grpc"},
                                                 {"default", "greeter", "50051"}}));
    EXPECT_EQ(svc.annotations.at("podlb.io/weight"), "3");
    ASSERT_EQ(svc.endpoints.size(), 1u);
    const Endpoint& e = svc.endpoints[0];
    EXPECT_EQ(e.HostPort(), "10.0.0.1:8080");
    EXPECT_EQ(e.pod_name, "7");
    EXPECT_EQ(e.zone, "");  // null is absent
    EXPECT_FALSE(e.ready);
    EXPECT_TRUE(e.serving);
    EXPECT_FALSE(e.terminating);
    EXPECT_EQ(e.weight, 2u);
  }
  EXPECT_EQ((*json)[0].endpoints, (*yaml)[0].endpoints);
}

// Content that starts like JSON but is a YAML flow mapping is still YAML's to read.
TEST(EndpointsFileTest, YamlFlowMappingIsNotMistakenForJson) {
  auto services = ParseEndpointsFile(
      "{services: [{service: default/a:1, endpoints: [{address: 10.0.0.1, port: 1}]}]}", "e.yaml");
  ASSERT_TRUE(services.ok()) << services.status();
  EXPECT_EQ((*services)[0].endpoints[0].HostPort(), "10.0.0.1:1");
}

// Nested aliases expand exponentially when the tree is copied: refused, not followed for 10^9
// nodes.
TEST(EndpointsFileTest, AliasBombIsRefused) {
  std::string content = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n";
  for (int i = 1; i < 9; ++i) {
    content += "a" + std::to_string(i) + ": &a" + std::to_string(i) + " [";
    for (int j = 0; j < 10; ++j) content += (j ? ", *a" : "*a") + std::to_string(i - 1);
    content += "]\n";
  }
  content += "services: []\n";
  auto services = ParseEndpointsFile(content, "bomb.yaml");
  ASSERT_FALSE(services.ok());
  EXPECT_THAT(std::string(services.status().message()),
              HasSubstr("bomb.yaml: aliases expand the document"));
}

TEST(EndpointsFileTest, ErrorsNameTheFileAndTheField) {
  struct Case {
    const char* content;
    const char* expected;
  } cases[] = {
      {"services: 3", "expected a mapping with a `services` list"},
      {"services: [{endpoints: []}]", "services[0]: missing `service`"},
      {"services: [{service: 'x/y:1', endpoints: [{address: nothost, port: 1}]}]",
       "services[0].endpoints[0].address"},
      {"services: [{service: 'x/y:1', endpoints: [{address: 1.2.3.4, port: 70000}]}]",
       "port: must be 1..65535"},
      {"services: [unclosed", "e.yaml"},
      {"{\"services\": [", "e.yaml"},  // neither JSON nor YAML
      {"services: [{service: 'x/y:1', endpoints: [{address: 1.2.3.4, port: http}]}]",
       "services[0].endpoints[0].port: \"http\" is not an integer"},
      {R"({"services": [{"service": "x/y:1",)"
       R"( "endpoints": [{"address": "1.2.3.4", "port": 1.5}]}]})",
       "services[0].endpoints[0].port: expected an integer"},
      {"services: [{service: 'x/y:1', endpoints: [{address: 1.2.3.4, port: 1, ready: maybe}]}]",
       "services[0].endpoints[0].ready: \"maybe\" is not a boolean"},
      {R"({"services": [{"service": "x/y:1",)"
       R"( "endpoints": [{"address": "1.2.3.4", "port": 1, "ready": 1}]}]})",
       "services[0].endpoints[0].ready: expected true or false"},
      {"services: [{service: 'x/y:1', endpoints: [{address: 1.2.3.4, port: 1, weight: 0}]}]",
       "services[0].endpoints[0].weight: must be at least 1"},
      {"services: [{service: 'x/y:1', endpoints: [{address: [1.2.3.4], port: 1}]}]",
       "services[0].endpoints[0].address: expected a string"},
      {"services: [{service: 'x/y:1', aliases: 'x/y:2'}]", "services[0].aliases: expected a list"},
      {"services: [{service: 'x/y:1', annotations: [a]}]",
       "services[0].annotations: expected a mapping"},
      {"services: [{service: 'x/y:1', endpoints: {address: 1.2.3.4}}]",
       "services[0].endpoints: expected a list"},
      {"services: [{service: 'x/y:1', endpoints: [{? [a] : b}]}]",
       "e.yaml: line 1: a mapping key must be a scalar"},
      {"services: [{service: 'x/y:1', endpoints: [{address: ~, port: 1}]}]",
       "services[0].endpoints[0]: missing address"},
  };
  for (const auto& c : cases) {
    auto services = ParseEndpointsFile(c.content, "e.yaml");
    ASSERT_FALSE(services.ok()) << c.content;
    EXPECT_THAT(std::string(services.status().message()), HasSubstr(c.expected)) << c.content;
  }
}

TEST(FileSourceTest, ReloadsOnChangeAndKeepsTheLastGoodStateOnABadEdit) {
  testing::TempDir dir;
  std::string path = dir.path() + "/endpoints.yaml";
  testing::WriteFile(path, kTwoPods);
  Registry registry;
  ServiceKey key{"default", "greeter", "grpc"};
  testing::RegistryWaiter waiter(registry, key);
  FileSource source(path, registry);
  ASSERT_TRUE(source.Start().ok());
  EXPECT_TRUE(source.HasSynced());
  EXPECT_THAT(EligibleAddresses(*waiter.Latest()), ElementsAre("127.0.0.2"));
  EXPECT_EQ(registry.Current({"default", "greeter", "50051"}), waiter.Latest());

  testing::WriteFile(path, R"(
services:
  - service: default/greeter:grpc
    endpoints:
      - {address: 127.0.0.2, port: 50051}
      - {address: 127.0.0.4, port: 50051}
)");
  ASSERT_TRUE(waiter.WaitFor([](const EndpointSet& s) { return EligibleAddresses(s).size() == 2; },
                             std::chrono::seconds(5), "the edit to be published"));

  int before = waiter.Publications();
  testing::WriteFile(path, "services: [ {broken");
  ASSERT_TRUE(testing::WaitFor([&] { return !source.Health().ok(); }, std::chrono::seconds(5),
                               "the bad edit to be noticed"));
  EXPECT_EQ(waiter.Publications(), before);
  EXPECT_THAT(EligibleAddresses(*registry.Current(key)), ElementsAre("127.0.0.2", "127.0.0.4"));

  // The same through the JSON parser: a good JSON edit is published, a bad one keeps it.
  testing::WriteFile(path, R"({"services": [{"service": "default/greeter:grpc",
                                "endpoints": [{"address": "127.0.0.5", "port": 50051}]}]})");
  ASSERT_TRUE(waiter.WaitFor(
      [](const EndpointSet& s) {
        return EligibleAddresses(s) == std::vector<std::string>{"127.0.0.5"};
      },
      std::chrono::seconds(5), "the JSON edit to be published"));
  // Reload records its health after it has published, so the waiter may see the edit first.
  EXPECT_TRUE(testing::WaitFor([&] { return source.Health().ok(); }, std::chrono::seconds(5),
                               "the source to be healthy again"));
  before = waiter.Publications();
  testing::WriteFile(path, R"({"services": [{"service": "default/greeter:grpc",
                                "endpoints": [{"address": "127.0.0.6", "port": "grpc"}]}]})");
  ASSERT_TRUE(testing::WaitFor([&] { return !source.Health().ok(); }, std::chrono::seconds(5),
                               "the bad JSON edit to be noticed"));
  EXPECT_THAT(std::string(source.Health().message()),
              HasSubstr("services[0].endpoints[0].port: \"grpc\" is not an integer"));
  EXPECT_EQ(waiter.Publications(), before);
  EXPECT_THAT(EligibleAddresses(*registry.Current(key)), ElementsAre("127.0.0.5"));
  source.Stop();
}

TEST(FileSourceTest, ServiceRemovedFromTheFileIsEmptiedThenForgotten) {
  testing::TempDir dir;
  std::string path = dir.path() + "/endpoints.yaml";
  testing::WriteFile(path, kTwoPods);
  Registry registry;
  FileSource source(path, registry);
  ASSERT_TRUE(source.Start().ok());
  const ServiceKey key{"default", "greeter", "grpc"};
  auto slot = registry.Slot(key);  // a holder (the proxy, a channel) sees it emptied
  testing::WriteFile(path, "services: []\n");
  ASSERT_TRUE(source.Reload().ok());
  ASSERT_NE(slot->Load(), nullptr);
  EXPECT_TRUE(slot->Load()->endpoints().empty());
  // ...and the Registry no longer knows it, nor keeps an entry once the holder lets go.
  EXPECT_EQ(registry.Current(key), nullptr);
  EXPECT_TRUE(registry.Keys().empty());
  slot.reset();
  EXPECT_EQ(registry.SlotCount(), 0u);
}

TEST(FileSourceTest, StartFailsOnAMissingFile) {
  Registry registry;
  FileSource source("/nonexistent/endpoints.yaml", registry);
  auto status = source.Start();
  EXPECT_FALSE(status.ok());
  EXPECT_THAT(std::string(status.message()), HasSubstr("/nonexistent/endpoints.yaml"));
}

}  // namespace
}  // namespace podlb
