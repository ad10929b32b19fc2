// The official Kubernetes Python client (urllib3, its own TLS stack and watch decoder) against
// the API-server stand-in: list, then watch from the list's resourceVersion; chunked lists
// (limit, _continue) that read one snapshot, and a continue token that expires mid-list.
#include <atomic>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sandbox/apiserver/api_server.h"
#include "support/process.h"

namespace podlb::sandbox {
namespace {

using json = nlohmann::json;
using ::testing::ElementsAre;
using namespace std::chrono_literals;

json Slice(const std::string& name, const std::string& address) {
  return {{"metadata", {{"name", name}, {"labels", {{"kubernetes.io/service-name", "greeter"}}}}},
          {"addressType", "IPv4"},
          {"endpoints", {{{"addresses", {address}}, {"conditions", {{"ready", true}}}}}},
          {"ports", {{{"name", "grpc"}, {"port", 50051}, {"protocol", "TCP"}}}}};
}

TEST(ApiServerPythonTest, WatchDeliversAddedThenModifiedInOrder) {
  auto store = std::make_shared<ResourceStore>();
  ApiServerOptions options;
  options.tokens = {"python-token"};
  ApiServer server(options, store);
  ASSERT_TRUE(server.Start().ok());
  testing::TempDir dir;
  std::string kubeconfig = dir.path() + "/kubeconfig";
  testing::WriteFile(kubeconfig, MakeKubeconfig(server.url(), server.ca_pem(), "python-token"));

  testing::ChildProcess python({"/usr/bin/python3",
                                testing::SourceDir() + "/tests/sandbox/py/watch_endpointslices.py",
                                kubeconfig, "default", "4", "60"});
  ASSERT_TRUE(python.WaitForLineContaining("LISTED 0", 30s));
  ASSERT_TRUE(testing::WaitFor([&] { return server.WatchesOpened("endpointslices") >= 1; }, 30s,
                               "the Python client to open its watch"));
  for (const char* name : {"slice-a", "slice-b", "slice-c"}) {
    ASSERT_TRUE(store->Create("endpointslices", "default", Slice(name, "10.0.0.1")).ok());
  }
  auto a = store->Get("endpointslices", "default", "slice-a");
  ASSERT_TRUE(a.ok());
  json changed = *a;
  changed["endpoints"][0]["conditions"]["ready"] = false;
  ASSERT_TRUE(store->Update("endpointslices", "default", changed).ok());
  ASSERT_TRUE(python.WaitForLineContaining("DONE", 30s));

  std::vector<std::string> events;
  for (const auto& line : python.Lines()) {
    if (line.rfind("EVENT ", 0) == 0) events.push_back(line);
  }
  ASSERT_EQ(events.size(), 4u);
  std::vector<std::string> expected = {"EVENT ADDED slice-a ", "EVENT ADDED slice-b ",
                                       "EVENT ADDED slice-c ", "EVENT MODIFIED slice-a "};
  uint64_t last = 0;
  for (size_t i = 0; i < events.size(); ++i) {
    ASSERT_EQ(events[i].rfind(expected[i], 0), 0u) << events[i];
    uint64_t version = std::stoull(events[i].substr(expected[i].size()));
    EXPECT_GT(version, last) << events[i];
    last = version;
  }
  EXPECT_EQ(last, store->CurrentVersion());
  EXPECT_EQ(python.WaitExit(30s), 0);
}

json Pod(const std::string& name) {
  return {{"metadata", {{"name", name}}},
          {"spec", {{"containers", {{{"name", "app"}, {"image", "app:1"}}}}}}};
}

// A stand-in whose `before_list` hook runs `between_pages` once, when the second page of a pod
// list is asked for, and the paged-listing script run against it.
class PythonPagingTest : public ::testing::Test {
 protected:
  void Start(std::function<void()> between_pages) {
    for (int i = 0; i < 5; ++i) {
      ASSERT_TRUE(store_->Create("pods", "default", Pod("pod-" + std::to_string(i))).ok());
    }
    ApiServerOptions options;
    options.tokens = {"python-token"};
    options.before_list = [this, between_pages](const std::string& resource,
                                                const std::string& continue_token) {
      if (resource == "pods" && !continue_token.empty() && !hooked_.exchange(true)) {
        between_pages();
      }
    };
    server_ = std::make_unique<ApiServer>(options, store_);
    ASSERT_TRUE(server_->Start().ok());
    kubeconfig_ = dir_.path() + "/kubeconfig";
    testing::WriteFile(kubeconfig_,
                       MakeKubeconfig(server_->url(), server_->ca_pem(), "python-token"));
  }

  // The script's output lines that start with PAGE or EXPIRED.
  std::vector<std::string> ListInPages(int limit) {
    testing::ChildProcess python({"/usr/bin/python3",
                                  testing::SourceDir() + "/tests/sandbox/py/list_pods_paged.py",
                                  kubeconfig_, "default", std::to_string(limit)});
    EXPECT_TRUE(python.WaitForLineContaining("DONE", 30s));
    EXPECT_EQ(python.WaitExit(30s), 0);
    std::vector<std::string> lines;
    for (const auto& line : python.Lines()) {
      if (line.rfind("PAGE ", 0) == 0 || line.rfind("EXPIRED ", 0) == 0) lines.push_back(line);
    }
    return lines;
  }

  std::string Rv(const std::string& name) {
    return (*store_->Get("pods", "default", name))["metadata"]["resourceVersion"];
  }

  std::shared_ptr<ResourceStore> store_ = std::make_shared<ResourceStore>();
  std::unique_ptr<ApiServer> server_;
  testing::TempDir dir_;
  std::string kubeconfig_;
  std::atomic<bool> hooked_{false};
};

TEST_F(PythonPagingTest, EveryPageReadsTheFirstPagesSnapshot) {
  std::string version, pod3, pod4;
  Start([&] {
    // Between page 1 and 2: pod-3 deleted, pod-25 created (it sorts into page 2), pod-4 changed.
    ASSERT_TRUE(store_->Delete("pods", "default", "pod-3").ok());
    ASSERT_TRUE(store_->Create("pods", "default", Pod("pod-25")).ok());
    json changed = *store_->Get("pods", "default", "pod-4");
    changed["metadata"]["labels"] = {{"changed", "yes"}};
    ASSERT_TRUE(store_->Update("pods", "default", changed).ok());
  });
  version = std::to_string(store_->CurrentVersion());
  pod3 = Rv("pod-3");
  pod4 = Rv("pod-4");
  std::vector<std::string> pages = ListInPages(2);
  EXPECT_THAT(pages,
              ElementsAre("PAGE " + version + " 3 pod-0@" + Rv("pod-0") + " pod-1@" + Rv("pod-1"),
                          "PAGE " + version + " 1 pod-2@" + Rv("pod-2") + " pod-3@" + pod3,
                          "PAGE " + version + " - pod-4@" + pod4));
  EXPECT_NE(Rv("pod-4"), pod4);  // the change happened, and the list did not show it
  EXPECT_EQ(server_->ListsServed("pods"), 3u);
}

TEST_F(PythonPagingTest, ExpiredTokenIs410AndTheStatusTokenFinishesTheList) {
  Start([&] {
    ASSERT_TRUE(store_->Create("pods", "default", Pod("pod-9")).ok());
    store_->Compact();  // the first page's version falls out of the history
  });
  const std::string version = std::to_string(store_->CurrentVersion());
  std::vector<std::string> pages = ListInPages(2);
  const std::string now = std::to_string(store_->CurrentVersion());
  EXPECT_THAT(pages,
              ElementsAre("PAGE " + version + " 3 pod-0@" + Rv("pod-0") + " pod-1@" + Rv("pod-1"),
                          "EXPIRED Expired token",
                          "PAGE " + now + " 2 pod-2@" + Rv("pod-2") + " pod-3@" + Rv("pod-3"),
                          "PAGE " + now + " - pod-4@" + Rv("pod-4") + " pod-9@" + Rv("pod-9")));
}

}  // namespace
}  // namespace podlb::sandbox
