// The control plane end to end against the sandbox cluster: `podlb sandbox` (API server, deployment
// and EndpointSlice controllers, real gRPC pods) feeds `podlb control-plane --kubeconfig`, and
// Debian's grpc++ xDS client dials xds:///greeter.default:50051. Scaling and restarting go
// through `podlb sandbox scale|restart`, as kubectl would. gRPC's xDS client is process-wide and
// reads its bootstrap once, so the sandbox, control plane and channel are shared by the suite;
// each test first brings the deployment to the state it starts from.
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "support/greeter_call.h"
#include "support/process.h"
#include "support/sandbox_cluster.h"
#include "xds/xds_test_backends.h"

namespace podlb::testing {
namespace {

using Clock = std::chrono::steady_clock;
using json = nlohmann::json;
using std::chrono::milliseconds;
constexpr auto kTimeout = std::chrono::seconds(20);

struct Shared {
  std::unique_ptr<SandboxCluster> cluster;
  std::unique_ptr<ChildProcess> control_plane;
  std::unique_ptr<grpc::testing::TestService::Stub> stub;
  std::string bootstrap;
};
Shared* g_shared = nullptr;

class SandboxXdsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    g_shared = new Shared;
    Shared& s = *g_shared;
    s.cluster = std::make_unique<SandboxCluster>(4);
    if (!s.cluster->started()) return;
    s.control_plane = std::make_unique<ChildProcess>(std::vector<std::string>{
        PodlbBinary(), "control-plane", "--kubeconfig", s.cluster->kubeconfig(), "--listen",
        "127.0.0.1:0", "--admin", "127.0.0.1:0"});
    if (!s.control_plane->WaitForLineContaining("xds port", kTimeout)) return;
    int xds_port = 0;
    for (const std::string& line : s.control_plane->Lines()) {
      auto pos = line.find("xds port ");
      if (pos != std::string::npos) xds_port = std::stoi(line.substr(pos + 9));
    }
    json bootstrap = {{"xds_servers",
                       {{{"server_uri", "127.0.0.1:" + std::to_string(xds_port)},
                         {"channel_creds", {{{"type", "insecure"}}}},
                         {"server_features", {"xds_v3", "ignore_resource_deletion"}}}}},
                      {"node", {{"id", "sandbox-xds-test"}, {"locality", {{"zone", "z1"}}}}}};
    s.bootstrap = bootstrap.dump();
    setenv("GRPC_XDS_BOOTSTRAP_CONFIG", s.bootstrap.c_str(), 1);
    s.stub = grpc::testing::TestService::NewStub(grpc::CreateChannel(
        "xds:///greeter.default:50051", grpc::InsecureChannelCredentials()));
  }

  static void TearDownTestSuite() {
    if (g_shared != nullptr) g_shared->stub.reset();
    delete g_shared;
    g_shared = nullptr;
  }

  void SetUp() override {
    ASSERT_NE(g_shared->stub, nullptr) << "the sandbox or the control plane did not start";
  }

  static SandboxCluster& cluster() { return *g_shared->cluster; }
  static void Sandbox(const std::string& verb) { EXPECT_TRUE(cluster().Run(verb)); }
  static std::set<std::string> Settle(size_t n) { return cluster().Settle(Call, n); }
  static std::set<std::string> WaitReadyPods(size_t n, const std::set<std::string>& exclude = {}) {
    return cluster().WaitReadyPods(n, exclude);
  }
  static ::testing::AssertionResult WaitClientUses(const std::set<std::string>& pods, int window) {
    return SandboxCluster::WaitClientUses(Call, pods, window);
  }

  // The pod that answered, or "" on failure.
  static std::string Call(milliseconds timeout, bool wait_for_ready) {
    return CallForPodName(*g_shared->stub, timeout, wait_for_ready);
  }


  static bool HaveNode() {
    return std::filesystem::exists(SourceDir() + "/node_modules/@grpc/grpc-js-xds");
  }

  // tests/xds/node/xds_loop.js calling the greeter back to back, past its first `n` answers.
  static std::unique_ptr<ChildProcess> StartNodeLoop(size_t n) {
    auto node = std::make_unique<ChildProcess>(
        std::vector<std::string>{"node", SourceDir() + "/tests/xds/node/xds_loop.js",
                                 "greeter.default:50051"},
        std::vector<std::string>{"GRPC_XDS_BOOTSTRAP_CONFIG=" + g_shared->bootstrap});
    EXPECT_TRUE(node->WaitForLine(
        [&, count = size_t{0}](const std::string& l) mutable {
          return l.starts_with("first ") && ++count >= n;
        },
        kTimeout));
    return node;
  }

  static std::map<std::string, Clock::time_point> NodeFirstSeen(const ChildProcess& node) {
    std::map<std::string, Clock::time_point> first;
    for (const std::string& line : node.Lines()) {
      std::istringstream in(line);
      std::string word, pod;
      int64_t ns = 0;
      if (in >> word >> pod >> ns && word == "first") {
        first.emplace(pod, Clock::time_point(std::chrono::nanoseconds(ns)));
      }
    }
    return first;
  }

  static std::vector<std::string> NodeFailures(const ChildProcess& node) {
    std::vector<std::string> failures;
    for (const std::string& line : node.Lines()) {
      if (line.starts_with("fail ")) failures.push_back(line);
    }
    return failures;
  }
};

TEST_F(SandboxXdsTest, SpreadsEvenlyOverThreePods) {
  cluster().ExpectEvenSpreadOverThreePods(Call);
}

TEST_F(SandboxXdsTest, ScaledUpPodsTakeCallsWithinOneSecondOfBeingReady) {
  cluster().ExpectScaledUpPodsTakeCallsPromptly(Call);
}

TEST_F(SandboxXdsTest, RollingRestartLosesNoCallAndEndsOnNewPods) {
  cluster().ExpectRollingRestartLosesNoCall(Call);
}

// The same three with a second xDS client nobody here wrote: grpc-js-xds, from npm.
TEST_F(SandboxXdsTest, NodeSpreadsEvenlyOverThreePods) {
  if (!HaveNode()) GTEST_SKIP() << "node_modules/@grpc/grpc-js-xds missing: run scripts/bootstrap.sh";
  std::set<std::string> pods = Settle(3);
  std::string output;
  ASSERT_EQ(RunCommand({"node", SourceDir() + "/tests/xds/node/xds_client.js", "spread",
                        "greeter.default:50051", "300"},
                       &output, std::chrono::seconds(30),
                       {"GRPC_XDS_BOOTSTRAP_CONFIG=" + g_shared->bootstrap}),
            0)
      << output;
  json counts = json::parse(output.substr(std::min(output.rfind("\n{"), output.size())),
                            nullptr, false);
  if (counts.is_discarded() && output.starts_with("{")) counts = json::parse(output, nullptr, false);
  ASSERT_TRUE(counts.is_object()) << output;
  std::map<std::string, int> by_pod;
  for (const auto& [pod, n] : counts.items()) by_pod[pod] = n.get<int>();
  EXPECT_EQ(by_pod.count(""), 0u) << counts.dump();
  EXPECT_EQ(by_pod.size(), 3u) << counts.dump();
  for (const auto& [pod, n] : by_pod) EXPECT_TRUE(pods.count(pod)) << pod << " is not ready";
  EXPECT_LE(MaxOverMin(by_pod), 1.2) << counts.dump();
}

TEST_F(SandboxXdsTest, NodeScaledUpPodsTakeCallsWithinOneSecondOfBeingReady) {
  if (!HaveNode()) GTEST_SKIP() << "node_modules/@grpc/grpc-js-xds missing: run scripts/bootstrap.sh";
  std::set<std::string> before = Settle(3);
  auto watcher = cluster().StartReadyWatch();
  auto node = StartNodeLoop(3);
  EXPECT_TRUE(cluster().Run("scale", {"6"}));
  auto scaled = Clock::now();
  ASSERT_TRUE(node->WaitForLine(
      [count = 0](const std::string& l) mutable { return l.starts_with("first ") && ++count >= 6; },
      std::chrono::seconds(5)));
  auto first_seen = NodeFirstSeen(*node);
  ASSERT_EQ(first_seen.size(), 6u);
  for (const auto& [pod, seen] : first_seen) {
    if (!before.count(pod)) {
      EXPECT_LT(seen - scaled, std::chrono::seconds(3)) << pod;
    }
  }
  SandboxCluster::ExpectPromptFirstCalls(*watcher, first_seen, before, scaled);
  auto failures = NodeFailures(*node);
  EXPECT_TRUE(failures.empty()) << failures.size() << " failed calls, first: " << failures[0];
}

TEST_F(SandboxXdsTest, NodeRollingRestartLosesNoCallAndEndsOnNewPods) {
  if (!HaveNode()) GTEST_SKIP() << "node_modules/@grpc/grpc-js-xds missing: run scripts/bootstrap.sh";
  std::set<std::string> before = Settle(3);
  auto node = StartNodeLoop(3);
  Sandbox("restart");
  std::set<std::string> after = WaitReadyPods(3, before);
  // The C++ client using only the new pods means the control plane has pushed the last change.
  EXPECT_TRUE(WaitClientUses(after, 50));
  kill(node->pid(), SIGUSR2);
  ASSERT_TRUE(node->WaitForLineContaining("window ", kTimeout));
  json window;
  for (const std::string& line : node->Lines()) {
    if (line.starts_with("window ")) window = json::parse(line.substr(7), nullptr, false);
  }
  ASSERT_TRUE(window.is_object());
  for (const auto& [pod, n] : window.items()) {
    EXPECT_TRUE(after.count(pod)) << "\"" << pod << "\" answered " << n << " calls after the restart";
  }
  EXPECT_EQ(window.size(), 3u) << window.dump();
  auto failures = NodeFailures(*node);
  EXPECT_TRUE(failures.empty()) << failures.size() << " failed calls, first: " << failures[0];
}

}  // namespace
}  // namespace podlb::testing
