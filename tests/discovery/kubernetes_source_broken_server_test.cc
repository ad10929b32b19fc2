// KubernetesSource against a scripted server that sends what a real API server would not:
// malformed JSON, a watch cut mid-event, an oversized list, a list whose second page is broken.
// The source must log, keep the last good endpoints, report the error through Health(), relist,
// and recover.
#include <chrono>

#include "discovery/kubernetes/kubernetes_source.h"
#include "discovery/raw_http_server.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "support/process.h"
#include "support/registry_waiter.h"

namespace podlb {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testing::RawHttpServer;
using namespace std::chrono_literals;

constexpr char kSliceList[] =
    "GET /apis/discovery.k8s.io/v1/namespaces/default/endpointslices?labelSelector";

constexpr char kService[] = R"({"kind":"ServiceList","metadata":{"resourceVersion":"10"},"items":[
  {"metadata":{"name":"greeter","namespace":"default","resourceVersion":"3"},
   "spec":{"ports":[{"name":"grpc","port":80}]}}]})";

// `next`: the list's metadata.continue (more pages follow).
std::string SliceList(const std::string& rv, const std::vector<std::string>& ips,
                      const std::string& next = "") {
  std::string endpoints;
  for (const auto& ip : ips) {
    if (!endpoints.empty()) endpoints += ",";
    endpoints += R"({"addresses":[")" + ip + R"("],"conditions":{"ready":true}})";
  }
  return R"({"kind":"EndpointSliceList","metadata":{"resourceVersion":")" + rv +
         (next.empty() ? "" : R"(","continue":")" + next) +
         R"("},"items":[{"metadata":{"name":"greeter-a","namespace":"default","resourceVersion":"5",)"
         R"("labels":{"kubernetes.io/service-name":"greeter"}},"addressType":"IPv4",)"
         R"("ports":[{"name":"grpc","port":8080}],"endpoints":[)" +
         endpoints + "]}]}";
}

// kMalformedList / kOversizedList / kMalformedSecondPage: the watch ends with an ERROR 410 event,
// so the source relists and gets the broken list. kBookmarkOnce: one watch sends a bookmark and
// ends, then kGood.
enum class SliceMode {
  kGood,
  kMalformedList,
  kMalformedSecondPage,
  kOversizedList,
  kTruncatedWatch,
  kMalformedEvent,
  kBookmarkOnce
};

class BrokenServerTest : public ::testing::Test {
 protected:
  BrokenServerTest()
      : server_([this](const std::string& request) { return Handle(request); }) {}

  RawHttpServer::Reply Handle(const std::string& request) {
    SliceMode mode;
    {
      absl::MutexLock lock(&mu_);
      mode = mode_;
    }
    const bool watch = request.find("watch=true") != std::string::npos;
    if (request.find("/services") != std::string::npos)
      return watch ? RawHttpServer::Stream("", /*hold=*/true) : RawHttpServer::Json(200, kService);
    if (!watch) {
      switch (mode) {
        case SliceMode::kMalformedSecondPage:
          // A first page that would replace the endpoints, then a broken second page.
          if (request.find("continue=page-2") == std::string::npos)
            return RawHttpServer::Json(200, SliceList("11", {"10.0.0.7"}, "page-2"));
          return RawHttpServer::Json(200, R"({"metadata":{"resourceVersion":"11"},"items":[{)");
        case SliceMode::kMalformedList:
          return RawHttpServer::Json(200, R"({"metadata":{"resourceVersion":"11"},"items":[{"meta)");
        case SliceMode::kOversizedList:
          return RawHttpServer::Json(200, SliceList("11", std::vector<std::string>(400, "10.9.9.9")));
        default:
          return RawHttpServer::Json(200, SliceList("11", {"10.0.0.1", "10.0.0.2"}));
      }
    }
    switch (mode) {
      case SliceMode::kMalformedList:
      case SliceMode::kMalformedSecondPage:
      case SliceMode::kOversizedList:
        return RawHttpServer::Stream(
            R"j({"type":"ERROR","object":{"kind":"Status","code":410,"reason":"Expired","message":"too old resource version: 11 (20)"}})j" "\n",
            /*hold=*/true);
      case SliceMode::kBookmarkOnce: {
        absl::MutexLock lock(&mu_);
        mode_ = SliceMode::kGood;
        return RawHttpServer::Stream(
            R"({"type":"BOOKMARK","object":{"metadata":{"resourceVersion":"15"}}})" "\n", false);
      }
      case SliceMode::kTruncatedWatch:
        // A valid event that would remove 10.0.0.2, then a second one cut in the middle.
        return RawHttpServer::Stream(
            R"({"type":"BOOKMARK","object":{"metadata":{"resourceVersion":"12"}}})" "\n"
            R"({"type":"MODIFIED","object":{"metadata":{"name":"greeter-a","namespace":"def)",
            /*hold=*/false);
      case SliceMode::kMalformedEvent:
        return RawHttpServer::Stream(
            R"({"type":"MODIFIED","object":{"metadata":{"name":"greeter-a","labels":{"kubernetes.io/service-name":"greeter"}},"addressType":"IPv4","endpoints":[{"addresses":"10.0.0.7"}]}})" "\n",
            /*hold=*/true);
      default:
        return RawHttpServer::Stream("", /*hold=*/true);
    }
  }

  void SetMode(SliceMode mode) {
    {
      absl::MutexLock lock(&mu_);
      mode_ = mode;
    }
    server_.ReleaseHeld();  // the current watch ends; the next request sees the new script
  }

  std::unique_ptr<KubernetesSource> MakeSource(size_t max_body = 64u << 20) {
    KubeConfig config;
    config.server = server_.url();
    KubernetesSourceOptions options;
    options.ns = "default";
    options.backoff_initial = 5ms;
    options.backoff_max = 20ms;
    options.random = [] { return 0.5; };
    options.client.max_body_bytes = max_body;
    return std::make_unique<KubernetesSource>(config, options, registry_);
  }

  [[nodiscard]] ::testing::AssertionResult WaitUnhealthy(KubernetesSource& source,
                                                         const std::string& needle) {
    return testing::WaitFor(
        [&] {
          absl::Status s = source.Health();
          return !s.ok() && std::string(s.message()).find(needle) != std::string::npos;
        },
        10s, "Health() to report \"" + needle + "\"");
  }

  absl::Mutex mu_;
  SliceMode mode_ ABSL_GUARDED_BY(mu_) = SliceMode::kGood;
  Registry registry_;
  RawHttpServer server_;
  const ServiceKey key_{"default", "greeter", "grpc"};
};

TEST(BackoffTest, DoublesWithJitterUpToTheCapAndResets) {
  double r = 0.0;
  Backoff backoff(500ms, 30s, [&] { return r; });
  EXPECT_EQ(backoff.Next(), 250ms);  // base 500 ms × 0.5
  r = 0.5;
  EXPECT_EQ(backoff.Next(), 1000ms);  // base 1 s × 1.0
  for (int i = 0; i < 10; ++i) backoff.Next();
  r = 0.99;
  EXPECT_EQ(backoff.Next(), 30s);  // capped
  backoff.Reset();
  r = 0.5;
  EXPECT_EQ(backoff.Next(), 500ms);
}

TEST_F(BrokenServerTest, SyncsFromAGoodServer) {
  testing::RegistryWaiter waiter(registry_, key_);
  auto source = MakeSource();
  ASSERT_TRUE(source->Start().ok());
  ASSERT_TRUE(waiter.WaitFor([](const EndpointSet& s) { return s.endpoints().size() == 2; }, 10s,
                             "two endpoints"));
  ASSERT_TRUE(testing::WaitFor([&] { return source->HasSynced() && source->Health().ok(); }, 10s,
                               "synced and healthy"));
  EXPECT_THAT(testing::EligibleAddresses(*registry_.Current(key_)),
              ElementsAre("10.0.0.1", "10.0.0.2"));
  EXPECT_EQ(registry_.Current({"default", "greeter", "80"})->endpoints().size(), 2u);
}

TEST_F(BrokenServerTest, StreamEndRewatchesFromTheBookmarkWithoutRelisting) {
  testing::RegistryWaiter waiter(registry_, key_);
  auto source = MakeSource();
  ASSERT_TRUE(source->Start().ok());
  ASSERT_TRUE(waiter.WaitFor([](const EndpointSet& s) { return s.endpoints().size() == 2; }, 10s,
                             "two endpoints"));
  ASSERT_EQ(server_.Count(kSliceList), 1);
  SetMode(SliceMode::kBookmarkOnce);
  ASSERT_TRUE(testing::WaitFor([&] { return server_.Count("resourceVersion=15") >= 1; }, 10s,
                               "a re-watch from the bookmark's resourceVersion"));
  EXPECT_EQ(server_.Count(kSliceList), 1);  // never relisted
  EXPECT_TRUE(source->Health().ok()) << source->Health();
}

TEST_F(BrokenServerTest, MalformedListAfter410KeepsTheLastGoodStateThenRecovers) {
  testing::RegistryWaiter waiter(registry_, key_);
  auto source = MakeSource();
  ASSERT_TRUE(source->Start().ok());
  ASSERT_TRUE(waiter.WaitFor([](const EndpointSet& s) { return s.endpoints().size() == 2; }, 10s,
                             "two endpoints"));
  const int publications = waiter.Publications();
  SetMode(SliceMode::kMalformedList);
  ASSERT_TRUE(WaitUnhealthy(*source, "malformed JSON"));
  EXPECT_THAT(std::string(source->Health().message()),
              HasSubstr("keeping the last known endpoints"));
  EXPECT_GE(server_.Count(kSliceList), 2);  // relisted after the 410
  EXPECT_EQ(waiter.Publications(), publications);
  EXPECT_THAT(testing::EligibleAddresses(*registry_.Current(key_)),
              ElementsAre("10.0.0.1", "10.0.0.2"));
  SetMode(SliceMode::kGood);
  ASSERT_TRUE(testing::WaitFor([&] { return source->Health().ok(); }, 10s, "recovery"));
}

TEST_F(BrokenServerTest, BrokenSecondPageKeepsTheLastWholeListThenRecovers) {
  testing::RegistryWaiter waiter(registry_, key_);
  auto source = MakeSource();
  ASSERT_TRUE(source->Start().ok());
  ASSERT_TRUE(waiter.WaitFor([](const EndpointSet& s) { return s.endpoints().size() == 2; }, 10s,
                             "two endpoints"));
  EXPECT_EQ(server_.Count(std::string(kSliceList) + "=kubernetes.io%2Fservice-name&limit=500"), 1);
  const int publications = waiter.Publications();
  SetMode(SliceMode::kMalformedSecondPage);
  ASSERT_TRUE(WaitUnhealthy(*source, "malformed JSON"));
  EXPECT_GE(server_.Count("continue=page-2"), 1);
  // Page one alone (10.0.0.7) was never applied: a list counts only once it is whole.
  EXPECT_EQ(waiter.Publications(), publications);
  EXPECT_THAT(testing::EligibleAddresses(*registry_.Current(key_)),
              ElementsAre("10.0.0.1", "10.0.0.2"));
  SetMode(SliceMode::kGood);
  ASSERT_TRUE(testing::WaitFor([&] { return source->Health().ok(); }, 10s, "recovery"));
}

TEST_F(BrokenServerTest, FirstListMalformedPublishesNothingAndIsNotSynced) {
  SetMode(SliceMode::kMalformedList);
  auto source = MakeSource();
  ASSERT_TRUE(source->Start().ok());
  ASSERT_TRUE(WaitUnhealthy(*source, "malformed JSON"));
  EXPECT_FALSE(source->HasSynced());
  // The Service alone must not publish a false "no endpoints".
  EXPECT_EQ(registry_.Current(key_), nullptr);
  SetMode(SliceMode::kGood);
  ASSERT_TRUE(testing::WaitFor([&] { return source->HasSynced() && source->Health().ok(); }, 10s,
                               "recovery"));
  EXPECT_EQ(registry_.Current(key_)->endpoints().size(), 2u);
}

TEST_F(BrokenServerTest, TruncatedWatchIsNotParsedAndTriggersARelist) {
  testing::RegistryWaiter waiter(registry_, key_);
  auto source = MakeSource();
  ASSERT_TRUE(source->Start().ok());
  ASSERT_TRUE(waiter.WaitFor([](const EndpointSet& s) { return s.endpoints().size() == 2; }, 10s,
                             "two endpoints"));
  const int publications = waiter.Publications();
  SetMode(SliceMode::kTruncatedWatch);
  ASSERT_TRUE(WaitUnhealthy(*source, "middle of an event"));
  const int lists_before = server_.Count(kSliceList);
  ASSERT_TRUE(testing::WaitFor(
      [&] {
        return server_.Count(kSliceList) >
               lists_before;
      },
      10s, "a relist after the truncated stream"));
  EXPECT_EQ(waiter.Publications(), publications);  // nothing half-parsed was published
  EXPECT_THAT(testing::EligibleAddresses(*registry_.Current(key_)),
              ElementsAre("10.0.0.1", "10.0.0.2"));
  SetMode(SliceMode::kGood);
  ASSERT_TRUE(testing::WaitFor([&] { return source->Health().ok(); }, 10s, "recovery"));
}

TEST_F(BrokenServerTest, MalformedWatchEventKeepsStateAndNamesTheField) {
  testing::RegistryWaiter waiter(registry_, key_);
  auto source = MakeSource();
  ASSERT_TRUE(source->Start().ok());
  ASSERT_TRUE(waiter.WaitFor([](const EndpointSet& s) { return s.endpoints().size() == 2; }, 10s,
                             "two endpoints"));
  SetMode(SliceMode::kMalformedEvent);
  ASSERT_TRUE(WaitUnhealthy(*source, "endpoints[0].addresses: expected array"));
  EXPECT_EQ(registry_.Current(key_)->endpoints().size(), 2u);
}

TEST_F(BrokenServerTest, OversizedListIsRefusedAndStateKept) {
  testing::RegistryWaiter waiter(registry_, key_);
  auto source = MakeSource(/*max_body=*/4096);
  ASSERT_TRUE(source->Start().ok());
  ASSERT_TRUE(waiter.WaitFor([](const EndpointSet& s) { return s.endpoints().size() == 2; }, 10s,
                             "two endpoints"));
  SetMode(SliceMode::kOversizedList);
  ASSERT_TRUE(WaitUnhealthy(*source, "exceeds 4096 bytes"));
  EXPECT_EQ(registry_.Current(key_)->endpoints().size(), 2u);
}

TEST_F(BrokenServerTest, StopReturnsPromptlyDuringAQuietWatch) {
  auto source = MakeSource();
  ASSERT_TRUE(source->Start().ok());
  ASSERT_TRUE(testing::WaitFor([&] { return source->HasSynced(); }, 10s, "sync"));
  const auto start = std::chrono::steady_clock::now();
  source->Stop();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 1s);
}

}  // namespace
}  // namespace podlb
