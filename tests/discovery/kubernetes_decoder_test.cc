// Decoding of EndpointSlice / Service JSON fixtures (tests/discovery/testdata/kubernetes).
#include "discovery/kubernetes/endpoint_slice_decoder.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "support/process.h"

namespace podlb {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

nlohmann::json Fixture(const std::string& name) {
  return nlohmann::json::parse(
      testing::ReadFile(testing::SourceDir() + "/tests/discovery/testdata/kubernetes/" + name));
}

TEST(EndpointSliceDecoderTest, DecodesValidSlice) {
  auto slice = DecodeEndpointSlice(Fixture("slice_valid.json"));
  ASSERT_TRUE(slice.ok()) << slice.status();
  EXPECT_EQ(slice->name, "greeter-abc");
  EXPECT_EQ(slice->ns, "default");
  EXPECT_EQ(slice->service_name, "greeter");
  EXPECT_EQ(slice->address_type, "IPv4");
  EXPECT_EQ(slice->resource_version, "1234");
  ASSERT_EQ(slice->ports.size(), 1u);
  EXPECT_EQ(slice->ports[0].name, "grpc");
  EXPECT_EQ(slice->ports[0].port, 50051);
  ASSERT_EQ(slice->endpoints.size(), 3u);
  const SliceEndpoint& a = slice->endpoints[0];
  EXPECT_THAT(a.addresses, ElementsAre("10.0.0.1"));
  EXPECT_TRUE(a.ready);
  EXPECT_TRUE(a.serving);
  EXPECT_FALSE(a.terminating);
  EXPECT_EQ(a.node_name, "node-a");
  EXPECT_EQ(a.zone, "zone-1");
  EXPECT_EQ(a.pod_name, "greeter-1");
  const SliceEndpoint& b = slice->endpoints[1];  // terminating but serving; hints ignored
  EXPECT_FALSE(b.ready);
  EXPECT_TRUE(b.serving);
  EXPECT_TRUE(b.terminating);
  const SliceEndpoint& c = slice->endpoints[2];
  EXPECT_FALSE(c.serving);
  EXPECT_EQ(c.node_name, "");
}

TEST(EndpointSliceDecoderTest, ToleratesUnknownFields) {
  auto slice = DecodeEndpointSlice(Fixture("slice_unknown_fields.json"));
  ASSERT_TRUE(slice.ok()) << slice.status();
  EXPECT_EQ(slice->address_type, "IPv6");
  ASSERT_EQ(slice->endpoints.size(), 1u);
  EXPECT_THAT(slice->endpoints[0].addresses, ElementsAre("fd00::1"));
  EXPECT_TRUE(slice->endpoints[0].ready);
}

TEST(EndpointSliceDecoderTest, RejectsMalformedSliceNamingTheField) {
  auto slice = DecodeEndpointSlice(Fixture("slice_malformed.json"));
  ASSERT_FALSE(slice.ok());
  EXPECT_EQ(std::string(slice.status().message()),
            "endpointslice \"greeter-abc\": endpoints[3].addresses: expected array, got string");
}

TEST(EndpointSliceDecoderTest, RejectsOtherMalformedShapes) {
  nlohmann::json base = Fixture("slice_valid.json");
  {
    auto j = base;
    j["ports"][0]["port"] = "fifty";
    auto s = DecodeEndpointSlice(j);
    ASSERT_FALSE(s.ok());
    EXPECT_THAT(std::string(s.status().message()), HasSubstr("ports[0].port: expected integer"));
  }
  {
    auto j = base;
    j["endpoints"][1]["conditions"]["ready"] = "yes";
    auto s = DecodeEndpointSlice(j);
    ASSERT_FALSE(s.ok());
    EXPECT_THAT(std::string(s.status().message()),
                HasSubstr("endpoints[1].conditions.ready: expected boolean"));
  }
  {
    auto j = base;
    j.erase("metadata");
    EXPECT_FALSE(DecodeEndpointSlice(j).ok());
  }
  EXPECT_FALSE(DecodeEndpointSlice(nlohmann::json::array()).ok());
}

TEST(EndpointSliceDecoderTest, KeepsFqdnAddressTypeForTheMergeToSkip) {
  auto slice = DecodeEndpointSlice(Fixture("slice_fqdn.json"));
  ASSERT_TRUE(slice.ok()) << slice.status();
  EXPECT_EQ(slice->address_type, "FQDN");
}

TEST(EndpointSliceDecoderTest, MissingConditionsFollowApiSemantics) {
  auto slice = DecodeEndpointSlice(Fixture("slice_missing_conditions.json"));
  ASSERT_TRUE(slice.ok()) << slice.status();
  ASSERT_EQ(slice->endpoints.size(), 4u);
  ASSERT_EQ(slice->ports.size(), 1u);
  EXPECT_EQ(slice->ports[0].name, "");
  // No conditions at all: ready (unknown counts as ready), serving = ready, not terminating.
  for (int i : {0, 1}) {
    EXPECT_TRUE(slice->endpoints[i].ready) << i;
    EXPECT_TRUE(slice->endpoints[i].serving) << i;
    EXPECT_FALSE(slice->endpoints[i].terminating) << i;
  }
  // ready false, serving missing → serving follows ready.
  EXPECT_FALSE(slice->endpoints[2].ready);
  EXPECT_FALSE(slice->endpoints[2].serving);
  // ready null → ready; terminating given.
  EXPECT_TRUE(slice->endpoints[3].ready);
  EXPECT_TRUE(slice->endpoints[3].terminating);
}

TEST(ServiceDecoderTest, DecodesPortsAndAnnotations) {
  auto service = DecodeService(Fixture("service_named_ports.json"));
  ASSERT_TRUE(service.ok()) << service.status();
  EXPECT_EQ(service->name, "greeter");
  ASSERT_EQ(service->ports.size(), 2u);
  EXPECT_EQ(service->ports[0].name, "grpc");
  EXPECT_EQ(service->ports[0].port, 80);
  EXPECT_EQ(service->ports[1].port, 9090);
  EXPECT_EQ(service->annotations.at("podlb.io/lb-policy"), "p2c");
  EXPECT_EQ(service->annotations.count("kubectl.kubernetes.io/last-applied-configuration"), 0u);
}

TEST(ListDecoderTest, DecodesListAndRejectsBrokenBodies) {
  auto list = DecodeList(R"({"kind":"ServiceList","metadata":{"resourceVersion":"42"},"items":[{"a":1}]})",
                         "services");
  ASSERT_TRUE(list.ok()) << list.status();
  EXPECT_EQ(list->resource_version, "42");
  EXPECT_EQ(list->items.size(), 1u);
  auto empty = DecodeList(R"({"metadata":{"resourceVersion":"7"},"items":null})", "services");
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->items.empty());
  auto broken = DecodeList(R"({"metadata":{"resourceVersion":"42"},"items":[{"a":)", "services");
  ASSERT_FALSE(broken.ok());
  EXPECT_THAT(std::string(broken.status().message()), HasSubstr("malformed JSON"));
  EXPECT_FALSE(DecodeList(R"({"items":[]})", "services").ok());  // no resourceVersion
}

TEST(WatchEventDecoderTest, DecodesEventsBookmarksAndErrors) {
  auto added = DecodeWatchEvent(
      R"({"type":"ADDED","object":{"metadata":{"name":"x","resourceVersion":"5"}}})", "services");
  ASSERT_TRUE(added.ok());
  EXPECT_EQ(added->type, "ADDED");
  EXPECT_EQ(added->resource_version, "5");
  auto bookmark = DecodeWatchEvent(
      R"({"type":"BOOKMARK","object":{"kind":"Service","metadata":{"resourceVersion":"77"}}})",
      "services");
  ASSERT_TRUE(bookmark.ok());
  EXPECT_EQ(bookmark->resource_version, "77");
  auto error = DecodeWatchEvent(
      R"j({"type":"ERROR","object":{"kind":"Status","code":410,"reason":"Expired","message":"too old resource version: 1 (50)"}})j",
      "services");
  ASSERT_TRUE(error.ok());
  EXPECT_EQ(error->error_code, 410);
  EXPECT_THAT(error->error_message, HasSubstr("too old"));
  EXPECT_FALSE(DecodeWatchEvent(R"({"type":"ADDED","obj)", "services").ok());
  EXPECT_FALSE(DecodeWatchEvent(R"({"object":{}})", "services").ok());
}

}  // namespace
}  // namespace podlb
