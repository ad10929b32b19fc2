// libpodlb end to end against the sandbox cluster: `podlb sandbox` (API server, controllers,
// real gRPC pods) and a C++ program using podlb::CreateChannel("kubernetes:///…") with the
// sandbox's kubeconfig, so the Kubernetes source watches the API server as it would in a cluster.
// Scaling, restarting and deleting pods go through `podlb sandbox scale|restart` and kubectl.
#include "grpc/testing/test.grpc.pb.h"
#include "gtest/gtest.h"
#include "podlb/podlb.h"
#include "support/greeter_call.h"
#include "support/proc_connections.h"
#include "support/sandbox_cluster.h"

namespace podlb::testing {
namespace {

using std::chrono::milliseconds;

struct Shared {
  std::unique_ptr<SandboxCluster> cluster;
  std::unique_ptr<grpc::testing::TestService::Stub> stub;
};
Shared* g_shared = nullptr;

std::string Call(milliseconds timeout, bool wait_for_ready) {
  return CallForPodName(*g_shared->stub, timeout, wait_for_ready);
}

class SandboxLibraryTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    g_shared = new Shared;
    g_shared->cluster = std::make_unique<SandboxCluster>(5);
    if (!g_shared->cluster->started()) return;
    ChannelOptions options;
    options.kubeconfig = g_shared->cluster->kubeconfig();
    // Round robin: these promises (spread, prompt new pods, no lost call) are the library's under
    // any policy, and the 1.2 spread bound holds for a latency-blind one; the default, peak
    // EWMA, follows whichever pod a loaded machine answers fastest from.
    options.policy = LbPolicy::kRoundRobin;
    auto channel = CreateChannelOrError("kubernetes:///greeter.default:grpc", options);
    EXPECT_TRUE(channel.ok()) << channel.status();
    if (channel.ok()) g_shared->stub = grpc::testing::TestService::NewStub(*channel);
  }
  static void TearDownTestSuite() {
    delete g_shared;
    g_shared = nullptr;
  }
  void SetUp() override {
    ASSERT_NE(g_shared->stub, nullptr) << "the sandbox did not start or the channel failed";
  }
  static SandboxCluster& cluster() { return *g_shared->cluster; }
};

TEST_F(SandboxLibraryTest, SpreadsEvenlyOverThreePods) {
  cluster().ExpectEvenSpreadOverThreePods(Call);
}

TEST_F(SandboxLibraryTest, ScaledUpPodsTakeCallsWithinOneSecondOfBeingReady) {
  cluster().ExpectScaledUpPodsTakeCallsPromptly(Call);
}

TEST_F(SandboxLibraryTest, RollingRestartLosesNoCallAndEndsOnNewPods) {
  cluster().ExpectRollingRestartLosesNoCall(Call);
}

// Asserted: when one pod of three is replaced, the client keeps its very connections (same
// local ports) to the two pods that stay and opens exactly one to the replacement.
TEST_F(SandboxLibraryTest, ReplacingOnePodOpensNoConnectionToThePodsThatStay) {
  std::set<std::string> before = cluster().Settle(Call, 3);
  auto ips = cluster().PodIps();
  auto connections_before = OurConnectionsByRemoteIp();
  for (const auto& pod : before) {
    ASSERT_TRUE(ips.count(pod)) << pod;
    ASSERT_EQ(connections_before[ips[pod]].size(), 1u) << pod << " at " << ips[pod];
  }
  const std::string replaced = *before.begin();
  ASSERT_TRUE(cluster().DeletePod(replaced));
  std::set<std::string> after = cluster().WaitReadyPods(3, {replaced});
  ASSERT_TRUE(SandboxCluster::WaitClientUses(Call, after));

  ips = cluster().PodIps();
  auto connections_after = OurConnectionsByRemoteIp();
  for (const auto& pod : after) {
    ASSERT_TRUE(ips.count(pod)) << pod;
    if (before.count(pod)) {
      EXPECT_EQ(connections_after[ips[pod]], connections_before[ips[pod]])
          << pod << " (stayed) was reconnected";
    } else {
      EXPECT_EQ(connections_after[ips[pod]].size(), 1u) << pod << " (new)";
    }
  }
}

// The pods that are up but bad, through a fresh channel per test (its default policy,
// peak_ewma with ejection): what one test's bad pod taught a balancer must not carry over.
class SandboxLibraryFaultTest : public SandboxLibraryTest {
 protected:
  void SetUp() override {
    SandboxLibraryTest::SetUp();
    ChannelOptions options;
    options.kubeconfig = cluster().kubeconfig();
    auto channel = CreateChannelOrError("kubernetes:///greeter.default:grpc", options);
    ASSERT_TRUE(channel.ok()) << channel.status();
    stub_ = grpc::testing::TestService::NewStub(*channel);
  }
  SandboxCluster::CallFn Caller() {
    return [this](milliseconds timeout, bool wait_for_ready) {
      return CallForPodName(*stub_, timeout, wait_for_ready);
    };
  }
  std::unique_ptr<grpc::testing::TestService::Stub> stub_;
};

TEST_F(SandboxLibraryFaultTest, SlowPodGetsAlmostNoCalls) { cluster().ExpectSlowPodShed(Caller()); }

TEST_F(SandboxLibraryFaultTest, FailingPodIsShed) { cluster().ExpectFailingPodShed(Caller()); }

TEST_F(SandboxLibraryFaultTest, StuckPodIsShed) { cluster().ExpectStuckPodShed(Caller()); }

}  // namespace
}  // namespace podlb::testing
