// The parts an ADS stream is made of, without a transport: the shared resource-name table (one
// name per control plane, gone with its last holder) and the hand-encoded response header,
// which must be byte for byte what protobuf writes.
#include <thread>
#include <vector>

#include "envoy/service/discovery/v3/discovery.pb.h"
#include "gtest/gtest.h"
#include "xds/ads_stream.h"
#include "xds/resource_names.h"

namespace podlb::xds {
namespace {

TEST(ResourceNameTableTest, OneSharedNamePerTextWithItsServiceParsedOnce) {
  auto table = ResourceNameTable::Create();
  ResourceNameConstSharedPtr a = table->Intern("default/greeter:grpc");
  ResourceNameConstSharedPtr b = table->Intern(std::string("default/greeter:grpc"));
  EXPECT_EQ(a.get(), b.get());
  ASSERT_TRUE(a->key.has_value());
  EXPECT_EQ(*a->key, (ServiceKey{"default", "greeter", "grpc"}));
  // Another form of the same Service is another name (clients get what they asked for).
  ResourceNameConstSharedPtr c = table->Intern("greeter.default:grpc");
  EXPECT_NE(a.get(), c.get());
  EXPECT_EQ(*c->key, *a->key);
  // A name that is not a Service is held all the same, with no key.
  ResourceNameConstSharedPtr odd = table->Intern("not a service");
  EXPECT_FALSE(odd->key.has_value());
  EXPECT_EQ(table->size(), 3u);
}

TEST(ResourceNameTableTest, NameLeavesWithItsLastHolderAndComesBackNew) {
  auto table = ResourceNameTable::Create();
  ResourceNameConstSharedPtr a = table->Intern("default/a:80");
  ResourceNameConstSharedPtr a2 = a;
  a.reset();
  EXPECT_EQ(table->size(), 1u);  // a2 still holds it
  a2.reset();
  EXPECT_EQ(table->size(), 0u);
  ResourceNameConstSharedPtr again = table->Intern("default/a:80");
  EXPECT_EQ(again->text, "default/a:80");
  EXPECT_EQ(table->size(), 1u);
}

TEST(ResourceNameTableTest, NameMayOutliveTheTablesOwner) {
  ResourceNameConstSharedPtr kept;
  {
    auto table = ResourceNameTable::Create();
    kept = table->Intern("default/a:80");
  }
  // The name holds the table it must leave; releasing it now is safe (ASan checks).
  EXPECT_EQ(kept->text, "default/a:80");
  kept.reset();
}

// Threads interning and releasing the same few names: each holder always sees its text, and
// the table ends empty (a release racing a new Intern of the same text must not erase the new).
TEST(ResourceNameTableTest, ConcurrentInternAndReleaseKeepEveryNameWhole) {
  auto table = ResourceNameTable::Create();
  std::vector<std::thread> threads;
  std::atomic<int> wrong{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 20000; ++i) {
        std::string text = "default/svc" + std::to_string((i + t) % 3) + ":80";
        ResourceNameConstSharedPtr name = table->Intern(text);
        if (name->text != text) wrong.fetch_add(1);
      }
    });
  }
  ResourceNameConstSharedPtr held = table->Intern("default/svc0:80");
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_EQ(table->size(), 1u);
  EXPECT_EQ(table->Intern("default/svc0:80").get(), held.get());
}

TEST(EncodeResponseHeaderTest, SameBytesAsProtobuf) {
  struct Case {
    std::string version, type_url, nonce, id;
  };
  const std::vector<Case> cases = {
      {"0123456789abcdef", "type.googleapis.com/envoy.config.cluster.v3.Cluster", "1", "podlb"},
      {"", "type.googleapis.com/x", "18446744073709551615", ""},
      {"v", "", "", std::string(200, 'p')},  // a control-plane id over 127 bytes: 2-byte lengths
      {std::string(300, 'v'), "t", "7", std::string(126, 'q')},  // inner length crosses 127
  };
  for (const Case& c : cases) {
    envoy::service::discovery::v3::DiscoveryResponse expected;
    expected.set_version_info(c.version);
    expected.set_type_url(c.type_url);
    expected.set_nonce(c.nonce);
    if (!c.id.empty()) expected.mutable_control_plane()->set_identifier(c.id);
    std::string encoded;
    EncodeResponseHeader(c.version, c.type_url, c.nonce, c.id, &encoded);
    EXPECT_EQ(encoded, expected.SerializeAsString()) << c.version.size() << " " << c.id.size();
    envoy::service::discovery::v3::DiscoveryResponse parsed;
    ASSERT_TRUE(parsed.ParseFromString(encoded));
    EXPECT_EQ(parsed.nonce(), c.nonce);
    EXPECT_EQ(parsed.control_plane().identifier(), c.id);
  }
}

}  // namespace
}  // namespace podlb::xds
