// The official Kubernetes Python client (urllib3, its own TLS stack and watch decoder) against
// the API-server stand-in: list, then watch from the list's resourceVersion.
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sandbox/apiserver/api_server.h"
#include "support/process.h"

namespace podlb::sandbox {
namespace {

using json = nlohmann::json;
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

}  // namespace
}  // namespace podlb::sandbox
