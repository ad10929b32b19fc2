#include <thread>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sandbox/apiserver/resource_store.h"

namespace podlb::sandbox {
namespace {

using json = nlohmann::json;
using std::chrono::milliseconds;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

json Slice(const std::string& name, const std::string& service, const std::string& address) {
  return {{"metadata", {{"name", name}, {"labels", {{"kubernetes.io/service-name", service}}}}},
          {"addressType", "IPv4"},
          {"endpoints", {{{"addresses", {address}}}}}};
}

std::string Rv(const json& object) { return object["metadata"]["resourceVersion"]; }

std::vector<std::string> Names(const std::vector<json>& items) {
  std::vector<std::string> names;
  for (const auto& item : items) names.push_back(item["metadata"]["name"]);
  return names;
}

LabelSelector Selector(const std::string& text) {
  auto selector = LabelSelector::Parse(text);
  EXPECT_TRUE(selector.ok()) << text << ": " << selector.status();
  return selector.ok() ? *selector : LabelSelector();
}

TEST(ResourceStoreTest, CreateAssignsServerFields) {
  ResourceStore store;
  auto created = store.Create("endpointslices", "default", Slice("a", "greeter", "10.0.0.1"));
  ASSERT_TRUE(created.ok()) << created.status();
  const json& meta = (*created)["metadata"];
  EXPECT_EQ((*created)["kind"], "EndpointSlice");
  EXPECT_EQ((*created)["apiVersion"], "discovery.k8s.io/v1");
  EXPECT_EQ(meta["namespace"], "default");
  EXPECT_EQ(meta["uid"].get<std::string>().size(), 36u);
  EXPECT_EQ(Rv(*created), std::to_string(store.CurrentVersion()));
  EXPECT_THAT(meta["creationTimestamp"].get<std::string>(), ::testing::EndsWith("Z"));

  json generated = {{"metadata", {{"generateName", "greeter-"}}}};
  auto second = store.Create("endpointslices", "default", generated);
  ASSERT_TRUE(second.ok());
  std::string name = (*second)["metadata"]["name"];
  EXPECT_THAT(name, ::testing::StartsWith("greeter-"));
  EXPECT_EQ(name.size(), std::string("greeter-").size() + 5);
  EXPECT_GT(std::stoull(Rv(*second)), std::stoull(Rv(*created)));
}

TEST(ResourceStoreTest, CreateRejectsDuplicatesAndBadNames) {
  ResourceStore store;
  ASSERT_TRUE(store.Create("services", "default", {{"metadata", {{"name", "greeter"}}}}).ok());
  auto duplicate = store.Create("services", "default", {{"metadata", {{"name", "greeter"}}}});
  EXPECT_EQ(duplicate.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_THAT(std::string(duplicate.status().message()),
              HasSubstr("services \"greeter\" already exists"));
  // Same name in another namespace is another object.
  EXPECT_TRUE(store.Create("services", "other", {{"metadata", {{"name", "greeter"}}}}).ok());
  EXPECT_EQ(
      store.Create("services", "default", {{"metadata", {{"name", "Bad_Name"}}}}).status().code(),
      absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store.Create("services", "default", json::object()).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store.Create("widgets", "default", {{"metadata", {{"name", "x"}}}}).status().code(),
            absl::StatusCode::kNotFound);
}

TEST(ResourceStoreTest, UpdateChecksResourceVersion) {
  ResourceStore store;
  auto created =
      store.Create("services", "default",
                   {{"metadata", {{"name", "greeter"}}}, {"spec", {{"ports", json::array()}}}});
  ASSERT_TRUE(created.ok());
  json changed = *created;
  changed["spec"]["sessionAffinity"] = "ClientIP";
  auto updated = store.Update("services", "default", changed);
  ASSERT_TRUE(updated.ok()) << updated.status();
  EXPECT_GT(std::stoull(Rv(*updated)), std::stoull(Rv(*created)));
  EXPECT_EQ((*updated)["metadata"]["uid"], (*created)["metadata"]["uid"]);

  // `changed` still carries the old version: a lost update is refused.
  changed["spec"]["sessionAffinity"] = "None";
  auto stale = store.Update("services", "default", changed);
  EXPECT_EQ(stale.status().code(), absl::StatusCode::kAborted);
  EXPECT_THAT(std::string(stale.status().message()), HasSubstr("the object has been modified"));

  // Without a resourceVersion the update is unconditional.
  changed["metadata"].erase("resourceVersion");
  EXPECT_TRUE(store.Update("services", "default", changed).ok());
  EXPECT_EQ(
      store.Update("services", "default", {{"metadata", {{"name", "missing"}}}}).status().code(),
      absl::StatusCode::kNotFound);
}

TEST(ResourceStoreTest, UpdateThatChangesNothingKeepsTheVersion) {
  ResourceStore store;
  auto created = store.Create("services", "default", {{"metadata", {{"name", "greeter"}}}});
  ASSERT_TRUE(created.ok());
  uint64_t before = store.CurrentVersion();
  auto same = store.Update("services", "default", *created);
  ASSERT_TRUE(same.ok());
  EXPECT_EQ(Rv(*same), Rv(*created));
  EXPECT_EQ(store.CurrentVersion(), before);
}

TEST(ResourceStoreTest, DeleteRemovesAndReportsTheFinalObject) {
  ResourceStore store;
  ASSERT_TRUE(store.Create("endpointslices", "default", Slice("a", "greeter", "10.0.0.1")).ok());
  auto watcher = store.Watch("endpointslices", "default", LabelSelector(), 0);
  ASSERT_TRUE(watcher.ok());
  auto deleted = store.Delete("endpointslices", "default", "a");
  ASSERT_TRUE(deleted.ok());
  EXPECT_EQ(store.Get("endpointslices", "default", "a").status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(store.Delete("endpointslices", "default", "a").status().code(),
            absl::StatusCode::kNotFound);
  auto event = (*watcher)->Next(milliseconds(1000));
  ASSERT_TRUE(event.has_value());
  EXPECT_EQ(event->type, "DELETED");
  EXPECT_EQ(event->object["endpoints"][0]["addresses"][0], "10.0.0.1");
  EXPECT_EQ(Rv(event->object), std::to_string(store.CurrentVersion()));
}

TEST(ResourceStoreTest, ListFiltersByNamespaceAndSelectorAndReportsTheVersion) {
  ResourceStore store;
  ASSERT_TRUE(store.Create("endpointslices", "default", Slice("b", "greeter", "10.0.0.2")).ok());
  ASSERT_TRUE(store.Create("endpointslices", "default", Slice("a", "greeter", "10.0.0.1")).ok());
  ASSERT_TRUE(store.Create("endpointslices", "default", Slice("c", "other", "10.0.0.3")).ok());
  ASSERT_TRUE(store.Create("endpointslices", "prod", Slice("d", "greeter", "10.0.0.4")).ok());
  auto all = store.List("endpointslices", "", LabelSelector());
  EXPECT_THAT(Names(all.items), ElementsAre("a", "b", "c", "d"));
  EXPECT_EQ(all.resource_version, store.CurrentVersion());
  EXPECT_THAT(Names(store.List("endpointslices", "default", LabelSelector()).items),
              ElementsAre("a", "b", "c"));
  EXPECT_THAT(
      Names(store.List("endpointslices", "default", Selector("kubernetes.io/service-name=greeter"))
                .items),
      ElementsAre("a", "b"));
  EXPECT_TRUE(store.List("services", "", LabelSelector()).items.empty());
}

TEST(ResourceStoreTest, WatchReplaysHistoryThenFollowsInOrder) {
  ResourceStore store;
  auto a = store.Create("endpointslices", "default", Slice("a", "greeter", "10.0.0.1"));
  ASSERT_TRUE(a.ok());
  uint64_t after_a = store.CurrentVersion();
  ASSERT_TRUE(store.Create("endpointslices", "default", Slice("b", "greeter", "10.0.0.2")).ok());
  ASSERT_TRUE(store.Create("services", "default", {{"metadata", {{"name", "greeter"}}}}).ok());
  auto watcher = store.Watch("endpointslices", "default", LabelSelector(), after_a);
  ASSERT_TRUE(watcher.ok());
  json changed = *a;
  changed["endpoints"][0]["addresses"][0] = "10.0.0.9";
  ASSERT_TRUE(store.Update("endpointslices", "default", changed).ok());
  ASSERT_TRUE(store.Delete("endpointslices", "default", "b").ok());

  std::vector<std::string> seen;
  uint64_t last = after_a;
  for (int i = 0; i < 3; ++i) {
    auto event = (*watcher)->Next(milliseconds(1000));
    ASSERT_TRUE(event.has_value()) << "event " << i;
    seen.push_back(event->type + " " + event->object["metadata"]["name"].get<std::string>());
    uint64_t version = std::stoull(Rv(event->object));
    EXPECT_GT(version, last);
    last = version;
  }
  EXPECT_THAT(seen, ElementsAre("ADDED b", "MODIFIED a", "DELETED b"));
  EXPECT_FALSE((*watcher)->Next(milliseconds(20)).has_value());
  EXPECT_EQ((*watcher)->DeliveredVersion(), store.CurrentVersion());
}

TEST(ResourceStoreTest, WatchWakesOnAnotherThreadsWrite) {
  ResourceStore store;
  auto watcher = store.Watch("endpointslices", "default", LabelSelector(), 0);
  ASSERT_TRUE(watcher.ok());
  std::thread writer([&] {
    ASSERT_TRUE(store.Create("endpointslices", "default", Slice("a", "greeter", "10.0.0.1")).ok());
  });
  auto event = (*watcher)->Next(milliseconds(10000));
  writer.join();
  ASSERT_TRUE(event.has_value());
  EXPECT_EQ(event->type, "ADDED");
}

TEST(ResourceStoreTest, CloseWakesABlockedNext) {
  ResourceStore store;
  auto watcher = store.Watch("endpointslices", "default", LabelSelector(), 0);
  ASSERT_TRUE(watcher.ok());
  auto start = std::chrono::steady_clock::now();
  std::thread closer([&] { (*watcher)->Close(); });
  EXPECT_FALSE((*watcher)->Next(milliseconds(30000)).has_value());
  closer.join();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10));
}

TEST(ResourceStoreTest, SelectorTransitionsBecomeAddedAndDeleted) {
  ResourceStore store;
  auto watcher =
      store.Watch("endpointslices", "", Selector("kubernetes.io/service-name=greeter"), 0);
  ASSERT_TRUE(watcher.ok());
  auto created = store.Create("endpointslices", "default", Slice("a", "other", "10.0.0.1"));
  ASSERT_TRUE(created.ok());
  json moved = *created;
  moved["metadata"]["labels"]["kubernetes.io/service-name"] = "greeter";
  auto in = store.Update("endpointslices", "default", moved);
  ASSERT_TRUE(in.ok());
  json out = *in;
  out["metadata"]["labels"]["kubernetes.io/service-name"] = "other";
  ASSERT_TRUE(store.Update("endpointslices", "default", out).ok());
  auto first = (*watcher)->Next(milliseconds(1000));
  auto second = (*watcher)->Next(milliseconds(1000));
  ASSERT_TRUE(first && second);
  EXPECT_EQ(first->type, "ADDED");
  EXPECT_EQ(second->type, "DELETED");
  EXPECT_FALSE((*watcher)->Next(milliseconds(20)).has_value());
}

TEST(ResourceStoreTest, CompactMakesOlderVersionsGone) {
  ResourceStore store;
  ASSERT_TRUE(store.Create("endpointslices", "default", Slice("a", "greeter", "10.0.0.1")).ok());
  uint64_t old_version = store.CurrentVersion();
  ASSERT_TRUE(store.Create("endpointslices", "default", Slice("b", "greeter", "10.0.0.2")).ok());
  EXPECT_TRUE(store.Watch("endpointslices", "default", LabelSelector(), old_version).ok());
  store.Compact();
  auto gone = store.Watch("endpointslices", "default", LabelSelector(), old_version);
  EXPECT_EQ(gone.status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_THAT(std::string(gone.status().message()),
              HasSubstr("too old resource version: " + std::to_string(old_version)));
  auto current = store.Watch("endpointslices", "default", LabelSelector(), store.CurrentVersion());
  ASSERT_TRUE(current.ok());
  ASSERT_TRUE(store.Delete("endpointslices", "default", "a").ok());
  auto event = (*current)->Next(milliseconds(1000));
  ASSERT_TRUE(event.has_value());
  EXPECT_EQ(event->type, "DELETED");
}

TEST(ResourceStoreTest, BoundedHistoryExpiresOldVersions) {
  ResourceStore store(/*history_limit=*/3);
  uint64_t start = store.CurrentVersion();
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(
        store.Create("services", "default", {{"metadata", {{"name", "s" + std::to_string(i)}}}})
            .ok());
  }
  EXPECT_EQ(store.Watch("services", "", LabelSelector(), start).status().code(),
            absl::StatusCode::kOutOfRange);
  auto recent = store.Watch("services", "", LabelSelector(), store.CurrentVersion() - 3);
  ASSERT_TRUE(recent.ok());
  int events = 0;
  while ((*recent)->Next(milliseconds(20))) ++events;
  EXPECT_EQ(events, 3);
}

ResourceStore::PageRequest PageOf(size_t limit, const std::string& start = "", uint64_t version = 0,
                                  const std::string& ns = "default") {
  ResourceStore::PageRequest request;
  request.ns = ns;
  request.limit = limit;
  request.start = start;
  request.version = version;
  return request;
}

TEST(ResourceStorePagesTest, PagesFollowKeyOrderWithinAndAcrossNamespaces) {
  ResourceStore store;
  for (const char* name : {"e", "b", "d", "a", "c"}) {
    ASSERT_TRUE(store.Create("endpointslices", "default", Slice(name, "greeter", "10.0.0.1")).ok());
  }
  ASSERT_TRUE(store.Create("endpointslices", "alpha", Slice("z", "greeter", "10.0.0.9")).ok());

  auto first = store.ListPage("endpointslices", PageOf(2));
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_THAT(Names(first->items), ElementsAre("a", "b"));
  EXPECT_TRUE(first->more);
  EXPECT_EQ(first->last_key, "b");  // relative to "default/"
  EXPECT_EQ(first->remaining, 3u);
  EXPECT_EQ(first->resource_version, store.CurrentVersion());

  auto rest = store.ListPage("endpointslices", PageOf(0, "b" + std::string(1, '\0')));
  ASSERT_TRUE(rest.ok());
  EXPECT_THAT(Names(rest->items), ElementsAre("c", "d", "e"));
  EXPECT_FALSE(rest->more);
  EXPECT_EQ(rest->last_key, "");

  // Exactly `limit` left: no further page.
  auto exact = store.ListPage("endpointslices", PageOf(3, "c"));
  ASSERT_TRUE(exact.ok());
  EXPECT_THAT(Names(exact->items), ElementsAre("c", "d", "e"));
  EXPECT_FALSE(exact->more);

  // Across namespaces, keys are "namespace/name": alpha sorts first.
  auto all = store.ListPage("endpointslices", PageOf(2, "", 0, ""));
  ASSERT_TRUE(all.ok());
  EXPECT_THAT(Names(all->items), ElementsAre("z", "a"));
  EXPECT_EQ(all->last_key, "default/a");
  EXPECT_EQ(all->remaining, 4u);
}

TEST(ResourceStorePagesTest, LaterPagesReadTheFirstPagesSnapshot) {
  ResourceStore store;
  for (const char* name : {"a", "b", "c", "d", "e"}) {
    ASSERT_TRUE(store.Create("endpointslices", "default", Slice(name, "greeter", "10.0.0.1")).ok());
  }
  auto first = store.ListPage("endpointslices", PageOf(2));
  ASSERT_TRUE(first.ok());
  const uint64_t snapshot = first->resource_version;
  const std::string d_version = Rv(*store.Get("endpointslices", "default", "d"));

  // Between the pages: c deleted, d modified, bb created (sorts into the next page), e deleted
  // and created again.
  ASSERT_TRUE(store.Delete("endpointslices", "default", "c").ok());
  json d = *store.Get("endpointslices", "default", "d");
  d["endpoints"][0]["addresses"][0] = "10.9.9.9";
  ASSERT_TRUE(store.Update("endpointslices", "default", d).ok());
  ASSERT_TRUE(store.Create("endpointslices", "default", Slice("bb", "greeter", "10.0.0.2")).ok());
  ASSERT_TRUE(store.Delete("endpointslices", "default", "e").ok());
  ASSERT_TRUE(store.Create("endpointslices", "default", Slice("e", "greeter", "10.0.0.3")).ok());

  auto second =
      store.ListPage("endpointslices", PageOf(2, first->last_key + std::string(1, '\0'), snapshot));
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(second->resource_version, snapshot);
  EXPECT_THAT(Names(second->items), ElementsAre("c", "d"));
  EXPECT_EQ(Rv(second->items[1]), d_version);
  EXPECT_EQ(second->items[1]["endpoints"][0]["addresses"][0], "10.0.0.1");
  EXPECT_EQ(second->remaining, 1u);
  auto third = store.ListPage("endpointslices",
                              PageOf(2, second->last_key + std::string(1, '\0'), snapshot));
  ASSERT_TRUE(third.ok());
  EXPECT_THAT(Names(third->items), ElementsAre("e"));
  EXPECT_EQ(third->items[0]["endpoints"][0]["addresses"][0], "10.0.0.1");
  EXPECT_FALSE(third->more);

  // The current state, for comparison.
  auto now = store.ListPage("endpointslices", PageOf(0));
  ASSERT_TRUE(now.ok());
  EXPECT_THAT(Names(now->items), ElementsAre("a", "b", "bb", "d", "e"));
}

TEST(ResourceStorePagesTest, SelectorsFilterPagesAndLimitCountsMatches) {
  ResourceStore store;
  for (int i = 0; i < 6; ++i) {
    std::string service = i % 2 == 0 ? "even" : "odd";
    ASSERT_TRUE(store
                    .Create("endpointslices", "default",
                            Slice("s" + std::to_string(i), service, "10.0.0.1"))
                    .ok());
  }
  ResourceStore::PageRequest request = PageOf(2);
  request.selector = Selector("kubernetes.io/service-name=odd");
  auto page = store.ListPage("endpointslices", request);
  ASSERT_TRUE(page.ok());
  EXPECT_THAT(Names(page->items), ElementsAre("s1", "s3"));
  EXPECT_TRUE(page->more);
  request.filter = [](const json& object) { return object["metadata"]["name"] != "s5"; };
  page = store.ListPage("endpointslices", request);
  ASSERT_TRUE(page.ok());
  EXPECT_THAT(Names(page->items), ElementsAre("s1", "s3"));
  EXPECT_FALSE(page->more);  // s5 was the only other match
}

TEST(ResourceStorePagesTest, SnapshotsOlderThanTheHistoryAreGone) {
  ResourceStore store(/*history_limit=*/3);
  ASSERT_TRUE(store.Create("services", "default", {{"metadata", {{"name", "a"}}}}).ok());
  const uint64_t snapshot = store.CurrentVersion();
  for (int i = 0; i < 2; ++i) {
    ASSERT_TRUE(
        store.Create("services", "default", {{"metadata", {{"name", "b" + std::to_string(i)}}}})
            .ok());
  }
  EXPECT_TRUE(store.ListPage("services", PageOf(1, "", snapshot)).ok());  // 2 events back: kept
  ASSERT_TRUE(store.Create("services", "default", {{"metadata", {{"name", "c"}}}}).ok());
  ASSERT_TRUE(store.Create("services", "default", {{"metadata", {{"name", "d"}}}}).ok());
  auto gone = store.ListPage("services", PageOf(1, "", snapshot));
  EXPECT_EQ(gone.status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_THAT(std::string(gone.status().message()), HasSubstr("too old resource version"));

  const uint64_t now = store.CurrentVersion();
  EXPECT_TRUE(store.ListPage("services", PageOf(1, "", now)).ok());
  store.Compact();
  EXPECT_TRUE(store.ListPage("services", PageOf(1, "", now)).ok());  // the current version stays
  ASSERT_TRUE(store.Delete("services", "default", "a").ok());
  EXPECT_EQ(store.ListPage("services", PageOf(1, "", now - 1)).status().code(),
            absl::StatusCode::kOutOfRange);
  EXPECT_EQ(store.ListPage("services", PageOf(1, "", now + 5)).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(ResourceStorePagesTest, ClusterScopedKeysHaveNoNamespace) {
  ResourceStore store;
  for (const char* name : {"team-b", "team-a", "default"}) {
    ASSERT_TRUE(store.Create("namespaces", "", {{"metadata", {{"name", name}}}}).ok());
  }
  auto page = store.ListPage("namespaces", PageOf(2, "", 0, ""));
  ASSERT_TRUE(page.ok());
  EXPECT_THAT(Names(page->items), ElementsAre("default", "team-a"));
  EXPECT_EQ(page->last_key, "team-a");
}

TEST(LabelSelectorTest, EqualityAndSetBasedRequirements) {
  json labels = {{"app", "greeter"}, {"tier", "backend"}, {"zone", "a"}};
  struct Case {
    std::string selector;
    bool matches;
  };
  for (const Case& c : std::vector<Case>{
           {"", true},
           {"app=greeter", true},
           {"app==greeter", true},
           {"app=other", false},
           {"app!=other", true},
           {"missing!=x", true},
           {"app in (greeter, web)", true},
           {"app in (web)", false},
           {"zone notin (b,c)", true},
           {"zone notin (a)", false},
           {"missing notin (a)", true},
           {"tier", true},
           {"missing", false},
           {"!missing", true},
           {"!tier", false},
           {"app=greeter, tier in (backend), !missing", true},
           {"app=greeter,tier=frontend", false},
       }) {
    auto selector = LabelSelector::Parse(c.selector);
    ASSERT_TRUE(selector.ok()) << c.selector << ": " << selector.status();
    EXPECT_EQ(selector->Matches(labels), c.matches) << c.selector;
  }
  EXPECT_FALSE(Selector("app").Matches(nullptr));
  EXPECT_TRUE(Selector("app!=x").Matches(nullptr));
}

TEST(LabelSelectorTest, RejectsMalformedSelectors) {
  for (const std::string text : {"app in (a", "=x", "a=b,,c=d", "a b=c", "app in a,b", "a=(b)"}) {
    EXPECT_FALSE(LabelSelector::Parse(text).ok()) << text;
  }
}

}  // namespace
}  // namespace podlb::sandbox
