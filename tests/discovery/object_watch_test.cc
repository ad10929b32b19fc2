// ObjectWatch against a scripted API server: it lists and watches only the named object
// (fieldSelector=metadata.name), reports each state and its deletion, relists after a 410 in the
// watch, and names the missing verbs on a 403 while retrying until the server lets it in. The
// run against the sandbox's real API server is tests/e2e/test_server_faults_test.
#include "discovery/kubernetes/object_watch.h"

#include <chrono>
#include <string>
#include <vector>

#include "discovery/raw_http_server.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "support/process.h"

namespace podlb {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testing::RawHttpServer;
using namespace std::chrono_literals;

constexpr char kList[] = "GET /api/v1/namespaces/shop/pods?fieldSelector=metadata.name%3Dweb-1 ";
constexpr char kWatch[] =
    "GET /api/v1/namespaces/shop/pods?allowWatchBookmarks=true&fieldSelector="
    "metadata.name%3Dweb-1&resourceVersion=";

std::string PodJson(const std::string& rv, const std::string& delay) {
  return R"({"kind":"Pod","metadata":{"name":"web-1","namespace":"shop","resourceVersion":")" + rv +
         R"(","annotations":{"podlb.io/fault-delay":")" + delay + R"("}}})";
}

// What the watched object looked like at each on_change: its delay annotation, or "-" when gone.
class Recorder {
 public:
  void Record(const nlohmann::json* object) {
    absl::MutexLock lock(&mu_);
    seen_.push_back(
        object == nullptr
            ? "-"
            : object->at("metadata").at("annotations").value("podlb.io/fault-delay", ""));
  }
  // Waits until `n` states were reported; returns them.
  std::vector<std::string> WaitFor(size_t n) {
    absl::MutexLock lock(&mu_);
    auto enough = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return seen_.size() >= n; };
    mu_.AwaitWithTimeout(absl::Condition(&enough), absl::Seconds(10));
    return seen_;
  }

 private:
  absl::Mutex mu_;
  std::vector<std::string> seen_ ABSL_GUARDED_BY(mu_);
};

class ObjectWatchTest : public ::testing::Test {
 protected:
  // `list`: answers to the successive lists (the last repeats); `watch`: to the successive
  // watches (the last repeats).
  void Script(std::vector<RawHttpServer::Reply> list, std::vector<RawHttpServer::Reply> watch) {
    absl::MutexLock lock(&mu_);
    lists_ = std::move(list);
    watches_ = std::move(watch);
  }

  RawHttpServer::Reply Handle(const std::string& request) {
    absl::MutexLock lock(&mu_);
    const bool watch = request.find("watch=true") != std::string::npos;
    auto& replies = watch ? watches_ : lists_;
    size_t& next = watch ? next_watch_ : next_list_;
    RawHttpServer::Reply reply = replies[std::min(next, replies.size() - 1)];
    ++next;
    return reply;
  }

  std::unique_ptr<ObjectWatch> Start() {
    KubeConfig config;
    config.server = server_.url();
    ObjectWatchOptions options;
    options.ns = "shop";
    options.name = "web-1";
    options.backoff_initial = 5ms;
    options.backoff_max = 20ms;
    auto watch = std::make_unique<ObjectWatch>(
        config, options, [this](const nlohmann::json* object) { recorder_.Record(object); });
    EXPECT_TRUE(watch->Start().ok());
    return watch;
  }

  static RawHttpServer::Reply List(const std::string& rv, const std::string& items) {
    return RawHttpServer::Json(200, R"({"kind":"PodList","metadata":{"resourceVersion":")" + rv +
                                        R"("},"items":[)" + items + "]}");
  }
  static std::string Event(const std::string& type, const std::string& object) {
    return R"({"type":")" + type + R"(","object":)" + object + "}\n";
  }

  absl::Mutex mu_;
  std::vector<RawHttpServer::Reply> lists_ ABSL_GUARDED_BY(mu_);
  std::vector<RawHttpServer::Reply> watches_ ABSL_GUARDED_BY(mu_);
  size_t next_list_ ABSL_GUARDED_BY(mu_) = 0;
  size_t next_watch_ ABSL_GUARDED_BY(mu_) = 0;
  Recorder recorder_;
  RawHttpServer server_{[this](const std::string& request) { return Handle(request); }};
};

TEST_F(ObjectWatchTest, ReportsTheObjectItsChangesAndItsDeletionOnly) {
  Script({List("10", PodJson("9", "1s"))},
         {RawHttpServer::Stream(
             Event("MODIFIED", PodJson("11", "2s")) +
                 R"({"type":"BOOKMARK","object":{"metadata":{"resourceVersion":"12"}}})"
                 "\n" +
                 Event("DELETED", PodJson("13", "2s")),
             /*hold=*/true)});
  auto watch = Start();
  EXPECT_THAT(recorder_.WaitFor(3), ElementsAre("1s", "2s", "-"));
  EXPECT_TRUE(watch->HasSynced());
  EXPECT_EQ(server_.Count(kList), 1);
  EXPECT_EQ(server_.Count(std::string(kWatch) + "10&"), 1);  // from the list's version
}

TEST_F(ObjectWatchTest, AMissingObjectIsReportedAsGone) {
  Script({List("10", "")}, {RawHttpServer::Stream("", /*hold=*/true)});
  auto watch = Start();
  EXPECT_THAT(recorder_.WaitFor(1), ElementsAre("-"));
}

TEST_F(ObjectWatchTest, A410InTheWatchRelists) {
  Script(
      {List("10", PodJson("9", "1s")), List("30", PodJson("25", "3s"))},
      {RawHttpServer::Stream(
           R"j({"type":"ERROR","object":{"kind":"Status","code":410,"reason":"Expired","message":"too old resource version: 10 (20)"}})j"
           "\n",
           /*hold=*/false),
       RawHttpServer::Stream("", /*hold=*/true)});
  auto watch = Start();
  EXPECT_THAT(recorder_.WaitFor(2), ElementsAre("1s", "3s"));
  // The next watch starts from the relist's version (it is asked for after the relist's report).
  EXPECT_TRUE(testing::WaitFor([&] { return server_.Count(std::string(kWatch) + "30&") == 1; }, 10s,
                               "a watch from resourceVersion 30"));
  EXPECT_EQ(server_.Count(kList), 2);
}

TEST_F(ObjectWatchTest, A403NamesTheVerbsToGrantAndIsRetriedUntilAllowed) {
  const std::string forbidden =
      R"({"kind":"Status","status":"Failure","reason":"Forbidden","code":403,"message":"pods \"web-1\" is forbidden: User \"system:serviceaccount:shop:web\" cannot list resource \"pods\" in API group \"\" in the namespace \"shop\""})";
  Script({RawHttpServer::Json(403, forbidden), RawHttpServer::Json(403, forbidden),
          List("10", PodJson("9", "1s"))},
         {RawHttpServer::Stream("", /*hold=*/true)});
  ::testing::internal::CaptureStderr();
  auto watch = Start();
  EXPECT_THAT(recorder_.WaitFor(1), ElementsAre("1s"));
  std::string log = ::testing::internal::GetCapturedStderr();
  EXPECT_THAT(log, HasSubstr("kubernetes: 403 Forbidden listing pods \"web-1\" in \"shop\": the "
                             "service account needs get/list/watch on pods (core v1) in namespace "
                             "shop (a Role and RoleBinding) (server: pods \"web-1\" is forbidden: "
                             "User \"system:serviceaccount:shop:web\" cannot list resource "
                             "\"pods\""));
  EXPECT_THAT(log, HasSubstr("retrying with backoff"));
  // One line for the two identical failures, one when it works again.
  EXPECT_EQ(log.find("403 Forbidden"), log.rfind("403 Forbidden")) << log;
  EXPECT_THAT(log, HasSubstr("kubernetes: pods \"web-1\" in \"shop\" is followed again"));
  EXPECT_EQ(server_.Count(kList), 3);
}

}  // namespace
}  // namespace podlb
