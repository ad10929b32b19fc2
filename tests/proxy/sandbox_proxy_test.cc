// `podlb proxy` end to end against the sandbox cluster: the proxy watches the sandbox's API
// server through its kubeconfig, and a grpc++ client with ONE connection to the proxy calls the
// greeter, once on a port bound to the Service and once on the shared port that routes by
// :authority. Scaling and restarting go through `podlb sandbox scale|restart`.
#include "gtest/gtest.h"
#include "proxy/test_backend.h"
#include "support/greeter_call.h"
#include "support/sandbox_cluster.h"

namespace podlb::testing {
namespace {

using std::chrono::milliseconds;

struct Shared {
  std::unique_ptr<SandboxCluster> cluster;
  std::unique_ptr<ChildProcess> proxy;
  std::unique_ptr<grpc::testing::TestService::Stub> bound;      // port bound to the Service
  std::unique_ptr<grpc::testing::TestService::Stub> authority;  // shared port, by :authority
};
Shared* g_shared = nullptr;

std::string CallBound(milliseconds timeout, bool wait_for_ready) {
  return CallForPodName(*g_shared->bound, timeout, wait_for_ready);
}

std::string CallByAuthority(milliseconds timeout, bool wait_for_ready) {
  return CallForPodName(*g_shared->authority, timeout, wait_for_ready);
}

class SandboxProxyTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    g_shared = new Shared;
    Shared& s = *g_shared;
    s.cluster = std::make_unique<SandboxCluster>(6);
    if (!s.cluster->started()) return;
    s.proxy = std::make_unique<ChildProcess>(std::vector<std::string>{
        PodlbBinary(), "proxy", "--kubeconfig", s.cluster->kubeconfig(), "--listen",
        "127.0.0.1:0=default/greeter:grpc", "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0",
        // Round robin: these tests check that one connection's calls spread and follow the
        // pods; the default (peak EWMA) follows latency, which a loaded machine makes uneven.
        // The fault tests below run the default.
        "--workers", "1", "--lb", "round_robin"});
    if (!s.proxy->WaitForLineContaining("admin on port", SandboxCluster::kTimeout)) return;
    // "podlb proxy listening on 127.0.0.1:PORT routing ...", one line per --listen, in order.
    std::vector<int> ports;
    for (const std::string& line : s.proxy->Lines()) {
      auto at = line.find("listening on 127.0.0.1:");
      if (at != std::string::npos) ports.push_back(std::stoi(line.substr(at + 23)));
    }
    ASSERT_EQ(ports.size(), 2u);
    s.bound = ProxyStub(ports[0]);
    s.authority = ProxyStub(ports[1], "greeter.default.svc.cluster.local:50051");
  }
  static void TearDownTestSuite() {
    delete g_shared;
    g_shared = nullptr;
  }
  void SetUp() override {
    ASSERT_NE(g_shared->bound, nullptr) << "the sandbox or the proxy did not start";
  }
  static SandboxCluster& cluster() { return *g_shared->cluster; }
};

TEST_F(SandboxProxyTest, OneConnectionSpreadsEvenlyOverThreePods) {
  cluster().ExpectEvenSpreadOverThreePods(CallBound);
}

TEST_F(SandboxProxyTest, SharedPortRoutesByAuthorityAndSpreadsEvenly) {
  cluster().ExpectEvenSpreadOverThreePods(CallByAuthority);
}

TEST_F(SandboxProxyTest, ScaledUpPodsTakeCallsWithinOneSecondOfBeingReady) {
  cluster().ExpectScaledUpPodsTakeCallsPromptly(CallBound);
}

TEST_F(SandboxProxyTest, RollingRestartLosesNoCallAndEndsOnNewPods) {
  cluster().ExpectRollingRestartLosesNoCall(CallBound);
}

// The pods that are up but bad, through a fresh `podlb proxy` per test (its default policy,
// peak_ewma with ejection): what one test's bad pod taught a balancer must not carry over.
class SandboxProxyFaultTest : public SandboxProxyTest {
 protected:
  void SetUp() override {
    SandboxProxyTest::SetUp();
    proxy_ = std::make_unique<ChildProcess>(std::vector<std::string>{
        PodlbBinary(), "proxy", "--kubeconfig", cluster().kubeconfig(), "--listen",
        "127.0.0.1:0=default/greeter:grpc", "--admin", "", "--workers", "2"});
    ASSERT_TRUE(proxy_->WaitForLineContaining("listening on 127.0.0.1:", SandboxCluster::kTimeout));
    for (const std::string& line : proxy_->Lines()) {
      auto at = line.find("listening on 127.0.0.1:");
      if (at != std::string::npos) stub_ = ProxyStub(std::stoi(line.substr(at + 23)));
    }
    ASSERT_NE(stub_, nullptr);
  }
  SandboxCluster::CallFn Caller() {
    return [this](milliseconds timeout, bool wait_for_ready) {
      return CallForPodName(*stub_, timeout, wait_for_ready);
    };
  }
  std::unique_ptr<ChildProcess> proxy_;
  std::unique_ptr<grpc::testing::TestService::Stub> stub_;
};

TEST_F(SandboxProxyFaultTest, SlowPodGetsAlmostNoCalls) { cluster().ExpectSlowPodShed(Caller()); }

TEST_F(SandboxProxyFaultTest, FailingPodIsShed) { cluster().ExpectFailingPodShed(Caller()); }

TEST_F(SandboxProxyFaultTest, StuckPodIsShed) { cluster().ExpectStuckPodShed(Caller()); }

}  // namespace
}  // namespace podlb::testing
