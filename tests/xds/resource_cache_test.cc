// ResourceCache keeps only what exists: the entries of a deleted Service, of a name that stopped
// resolving and of a superseded EndpointSet go (they used to stay forever).
#include "xds/resource_cache.h"

#include "gtest/gtest.h"
#include "xds/resource_builders.h"

namespace podlb::xds {
namespace {

Endpoint Ep(const std::string& address, const std::string& zone = "z1") {
  Endpoint e;
  e.address = address;
  e.port = 50051;
  e.ready = e.serving = true;
  e.zone = zone;
  return e;
}

const ServiceKey kGreeter{"default", "greeter", "50051"};
const ServiceKey kTemp{"default", "temp", "50051"};

class ResourceCacheTest : public ::testing::Test {
 protected:
  // Every type a client of `key` subscribes to, as a gRPC xDS client asks for them.
  void Subscribe(const ServiceKey& key, const ClientProfile& client = {}) {
    for (ResourceType type : kAllResourceTypes) {
      const std::string name =
          type == ResourceType::kListener ? ListenerNameFor(key) : ClusterNameFor(key);
      ASSERT_NE(cache_.Get(type, name, client), nullptr) << ShortName(type) << " " << name;
    }
  }

  Registry registry_;
  ResourceCache cache_{registry_};
};

TEST_F(ResourceCacheTest, DeletedServiceLeavesNothingBehind) {
  registry_.Publish({kGreeter}, {Ep("10.0.0.1")});
  registry_.Publish({kTemp}, {Ep("10.0.0.9")});
  Subscribe(kGreeter);
  Subscribe(kTemp);
  EXPECT_EQ(cache_.size(), 8u);
  EXPECT_EQ(cache_.ServiceCount(), 2u);

  registry_.Remove({kTemp});
  cache_.Forget({kTemp});  // what the push thread does with the Registry's change
  EXPECT_EQ(cache_.size(), 4u);
  EXPECT_EQ(cache_.ServiceCount(), 1u);
  EXPECT_EQ(cache_.Get(ResourceType::kCluster, ClusterNameFor(kTemp), {}), nullptr);
  EXPECT_EQ(cache_.size(), 4u);  // asking again for a gone name builds nothing
  // The other Service is untouched: the very same encoded bytes are served.
  auto before = cache_.Get(ResourceType::kCluster, ClusterNameFor(kGreeter), {});
  cache_.Forget({kTemp});
  auto after = cache_.Get(ResourceType::kCluster, ClusterNameFor(kGreeter), {});
  ASSERT_TRUE(before && after);
  EXPECT_EQ(before, after);
}

TEST_F(ResourceCacheTest, ForgetDeletedDropsOnlyDeletedServicesAndKeepsOlderVersions) {
  registry_.Publish({kGreeter}, {Ep("10.0.0.1")});
  registry_.Publish({kTemp}, {Ep("10.0.0.9")});
  Subscribe(kGreeter);
  Subscribe(kTemp);
  auto old_eds = cache_.Get(ResourceType::kClusterLoadAssignment, ClusterNameFor(kGreeter), {});

  // Before a fan-out: kGreeter changed, kTemp was deleted. Only kTemp goes; kGreeter's entries of
  // the older set stay for the fan-out to bring up to date (or keep, where the bytes match).
  registry_.Publish({kGreeter}, {Ep("10.0.0.1"), Ep("10.0.0.2")});
  registry_.Remove({kTemp});
  cache_.ForgetDeleted({kGreeter, kTemp});
  EXPECT_EQ(cache_.size(), 4u);
  EXPECT_EQ(cache_.ServiceCount(), 1u);
  auto new_eds = cache_.Get(ResourceType::kClusterLoadAssignment, ClusterNameFor(kGreeter), {});
  ASSERT_TRUE(old_eds && new_eds);
  EXPECT_NE(old_eds, new_eds);
}

TEST_F(ResourceCacheTest, ServicePublishedUnderTwoKeysLeavesNothingOfEither) {
  // One EndpointSet for the port's name and number, as the kubernetes source publishes it: the
  // set's own key is the first (the name), clients ask by number.
  const ServiceKey by_name{"default", "temp", "grpc"};
  registry_.Publish({by_name, kTemp}, {Ep("10.0.0.9")});
  Subscribe(kTemp);
  EXPECT_EQ(cache_.ServiceCount(), 1u);
  registry_.Remove({by_name, kTemp});
  cache_.ForgetDeleted({kTemp});
  EXPECT_EQ(cache_.size(), 0u);
  EXPECT_EQ(cache_.ServiceCount(), 0u);
}

TEST_F(ResourceCacheTest, NameThatStopsResolvingIsDroppedOnItsNextGet) {
  registry_.Publish({kTemp}, {Ep("10.0.0.9")});
  Subscribe(kTemp);
  ASSERT_EQ(cache_.size(), 4u);
  registry_.Remove({kTemp});
  // No Forget yet (the push thread has not run): the stream's next Get finds the name gone.
  EXPECT_EQ(cache_.Get(ResourceType::kListener, ListenerNameFor(kTemp), {}), nullptr);
  EXPECT_EQ(cache_.size(), 0u);
  EXPECT_EQ(cache_.ServiceCount(), 0u);
}

TEST_F(ResourceCacheTest, ServiceCreatedAgainIsServedAgain) {
  registry_.Publish({kTemp}, {Ep("10.0.0.9")});
  Subscribe(kTemp);
  registry_.Remove({kTemp});
  cache_.Forget({kTemp});
  ASSERT_EQ(cache_.size(), 0u);
  registry_.Publish({kTemp}, {Ep("10.0.0.9")});
  Subscribe(kTemp);
  EXPECT_EQ(cache_.size(), 4u);
}

TEST_F(ResourceCacheTest, VariantsOfASupersededSetGoAndOnlyTheAskedForAreRebuilt) {
  registry_.Publish({kGreeter}, {Ep("10.0.0.1", "z1"), Ep("10.0.0.2", "z2")},
                    {{"podlb.io/zone-aware", "true"}});
  const std::string cla = ClusterNameFor(kGreeter);
  // Clients in three zones: one EDS variant per zone.
  for (const char* zone : {"z1", "z2", "z3"}) {
    ASSERT_TRUE(cache_.Get(ResourceType::kClusterLoadAssignment, cla, {.zone = zone}));
  }
  EXPECT_EQ(cache_.size(), 3u);
  // An unchanged Service keeps its entries through Forget.
  cache_.Forget({kGreeter});
  EXPECT_EQ(cache_.size(), 3u);

  registry_.Publish({kGreeter}, {Ep("10.0.0.1", "z1"), Ep("10.0.0.3", "z2")},
                    {{"podlb.io/zone-aware", "true"}});
  cache_.Forget({kGreeter});
  EXPECT_EQ(cache_.size(), 0u);
  // The z3 clients left meanwhile: only z1 and z2 are built for the new set.
  for (const char* zone : {"z1", "z2"}) {
    auto resource = cache_.Get(ResourceType::kClusterLoadAssignment, cla, {.zone = zone});
    ASSERT_TRUE(resource);
    EXPECT_NE(resource->any.value().find("10.0.0.3"), std::string::npos);  // the new set
  }
  EXPECT_EQ(cache_.size(), 2u);
}

}  // namespace
}  // namespace podlb::xds
