#include "core/registry.h"

#include <thread>

#include "gtest/gtest.h"

namespace podlb {
namespace {

Endpoint Ready(std::string address) {
  return Endpoint{.address = std::move(address), .port = 8080, .ready = true, .serving = true};
}

TEST(RegistryTest, SlotIsEmptyUntilPublishedThenFollowsPublications) {
  Registry registry;
  ServiceKey key{"default", "greeter", "grpc"};
  auto slot = registry.Slot(key);
  EXPECT_EQ(slot->Load(), nullptr);
  registry.Publish({key}, {Ready("127.0.0.2")});
  ASSERT_NE(slot->Load(), nullptr);
  EXPECT_EQ(slot->Load()->endpoints().size(), 1u);
  registry.Publish({key}, {Ready("127.0.0.2"), Ready("127.0.0.3")});
  EXPECT_EQ(slot->Load()->endpoints().size(), 2u);
}

TEST(RegistryTest, AliasesShareOneSnapshot) {
  Registry registry;
  ServiceKey by_name{"default", "greeter", "grpc"};
  ServiceKey by_number{"default", "greeter", "50051"};
  registry.Publish({by_name, by_number}, {Ready("127.0.0.2")});
  EXPECT_EQ(registry.Current(by_name), registry.Current(by_number));
  EXPECT_EQ(registry.Current(by_number)->key(), by_name);
}

TEST(RegistryTest, UnchangedContentIsNotRepublished) {
  Registry registry;
  ServiceKey key{"default", "greeter", "grpc"};
  int calls = 0;
  auto sub = registry.Subscribe(key, [&](const ServiceKey&, const EndpointSetConstSharedPtr&) { ++calls; });
  auto first = registry.Publish({key}, {Ready("127.0.0.2")});
  auto again = registry.Publish({key}, {Ready("127.0.0.2")});
  EXPECT_EQ(first, again);
  EXPECT_EQ(calls, 1);
  auto changed = registry.Publish({key}, {Ready("127.0.0.3")});
  EXPECT_GT(changed->version(), first->version());
  EXPECT_EQ(calls, 2);
}

TEST(RegistryTest, SubscriberGetsCurrentStateAtOnceAndNothingAfterUnsubscribing) {
  Registry registry;
  ServiceKey key{"default", "greeter", "grpc"};
  ServiceKey other{"default", "other", "grpc"};
  registry.Publish({key}, {Ready("127.0.0.2")});
  std::vector<uint64_t> versions;
  auto sub = registry.Subscribe(key, [&](const ServiceKey&, const EndpointSetConstSharedPtr& s) {
    versions.push_back(s->version());
  });
  ASSERT_EQ(versions.size(), 1u);
  registry.Publish({other}, {Ready("127.0.0.9")});
  EXPECT_EQ(versions.size(), 1u);
  sub.reset();
  registry.Publish({key}, {Ready("127.0.0.4")});
  EXPECT_EQ(versions.size(), 1u);
}

TEST(RegistryTest, RemovedKeyIsEmptiedForItsReadersThenForgotten) {
  Registry registry;
  ServiceKey key{"default", "temp", "grpc"};
  ServiceKey alias{"default", "temp", "50051"};
  registry.Publish({key, alias}, {Ready("127.0.0.2")});
  std::vector<size_t> seen;
  auto sub = registry.Subscribe(key, [&](const ServiceKey&, const EndpointSetConstSharedPtr& s) {
    seen.push_back(s->endpoints().size());
  });
  auto slot = registry.Slot(key);
  registry.Remove({key, alias});
  // Readers drain: the subscriber and the slot holder see an empty set...
  EXPECT_EQ(seen, (std::vector<size_t>{1, 0}));
  ASSERT_NE(slot->Load(), nullptr);
  EXPECT_TRUE(slot->Load()->endpoints().empty());
  // ...while the Registry no longer knows the key.
  EXPECT_EQ(registry.Current(key), nullptr);
  EXPECT_EQ(registry.Current(alias), nullptr);
  EXPECT_TRUE(registry.Keys().empty());
  EXPECT_EQ(registry.SlotCount(), 1u);  // the held slot
  slot.reset();
  EXPECT_EQ(registry.SlotCount(), 0u);
  // Removing what does not exist is a no-op.
  registry.Remove({key});
  EXPECT_EQ(seen.size(), 2u);
}

TEST(RegistryTest, KeyCreatedAgainReachesTheSlotStillHeld) {
  Registry registry;
  ServiceKey key{"default", "temp", "grpc"};
  registry.Publish({key}, {Ready("127.0.0.2")});
  auto slot = registry.Slot(key);
  registry.Remove({key});
  // Re-created with the very content it had: news all the same, since it did not exist.
  int calls = 0;
  auto sub = registry.Subscribe(key, [&](const ServiceKey&, const EndpointSetConstSharedPtr&) {
    ++calls;
  });
  EXPECT_EQ(calls, 0);  // a removed key has no current state to replay
  registry.Publish({key}, {Ready("127.0.0.2")});
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(slot->Load()->endpoints().size(), 1u);
  EXPECT_EQ(registry.Current(key), slot->Load());
  EXPECT_EQ(registry.Keys().size(), 1u);
}

TEST(RegistryTest, SlotsOfKeysNeverPublishedGoWithTheirLastHolder) {
  Registry registry;
  for (int i = 0; i < 100; ++i) {
    auto slot = registry.Slot({"default", "asked-" + std::to_string(i), "grpc"});
  }
  registry.Publish({{"default", "greeter", "grpc"}}, {Ready("127.0.0.2")});
  EXPECT_EQ(registry.SlotCount(), 1u);
}

TEST(RegistryTest, SubscribeAllSeesEveryKey) {
  Registry registry;
  std::vector<std::string> seen;
  auto sub = registry.SubscribeAll(
      [&](const ServiceKey& k, const EndpointSetConstSharedPtr&) { seen.push_back(k.name); });
  registry.Publish({{"ns", "a", "80"}}, {Ready("127.0.0.2")});
  registry.Publish({{"ns", "b", "80"}}, {Ready("127.0.0.3")});
  EXPECT_EQ(seen, (std::vector<std::string>{"a", "b"}));
}

TEST(RegistryTest, ReadersSeeMonotonicVersionsWhilePublishing) {
  Registry registry;
  ServiceKey key{"default", "greeter", "grpc"};
  auto slot = registry.Slot(key);
  std::atomic<bool> done{false};
  std::thread reader([&] {
    uint64_t last = 0;
    while (!done.load()) {
      if (auto set = slot->Load()) {
        EXPECT_GE(set->version(), last);
        last = set->version();
        EXPECT_EQ(set->endpoints().size(), 1u);
      }
    }
  });
  for (int i = 0; i < 2000; ++i)
    registry.Publish({key}, {Ready("127.0.0." + std::to_string(i % 200 + 2))});
  done = true;
  reader.join();
}

}  // namespace
}  // namespace podlb
