// A 2,000-pod Service (20 EndpointSlices of 100) in the sandbox, real grpc++ pods: through
// `podlb control-plane` and Debian's grpc++ xDS client, and through `podlb proxy`, every pod
// answers calls; when one pod is replaced (its slice changes), every push the control plane
// makes keeps the 1,999 siblings, and every pod answers again afterwards. gRPC's xDS client is
// process-wide, so the cluster, control plane, proxy and channels are shared by the suite.
#include <sys/resource.h>

#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "envoy/config/endpoint/v3/endpoint.pb.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "support/greeter_call.h"
#include "support/process.h"
#include "support/sandbox_cluster.h"
#include "xds/ads_test_client.h"
#include "xds/control_plane_process.h"
#include "xds/type_urls.h"

namespace podlb::testing {
namespace {

using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;
constexpr int kPods = 2000;
constexpr auto kLongTimeout = std::chrono::seconds(90);
const std::string kCluster = "default/greeter:50051";

struct Shared {
  std::unique_ptr<SandboxCluster> cluster;
  std::unique_ptr<ControlPlaneProcess> control_plane;
  std::unique_ptr<ChildProcess> proxy;
  std::unique_ptr<grpc::testing::TestService::Stub> xds_stub;
  std::unique_ptr<grpc::testing::TestService::Stub> proxy_stub;
  std::string bootstrap;
};
Shared* g_shared = nullptr;

// Healthy endpoint addresses of a ClusterLoadAssignment response ("" entries: not a CLA).
std::set<std::string> HealthyAddresses(const envoy::service::discovery::v3::DiscoveryResponse& r) {
  std::set<std::string> out;
  for (const auto& any : r.resources()) {
    envoy::config::endpoint::v3::ClusterLoadAssignment cla;
    if (!any.UnpackTo(&cla)) continue;
    for (const auto& locality : cla.endpoints()) {
      for (const auto& lb : locality.lb_endpoints()) {
        if (lb.health_status() == envoy::config::core::v3::HEALTHY) {
          out.insert(lb.endpoint().address().socket_address().address());
        }
      }
    }
  }
  return out;
}

// Calls from 4 threads until every pod of `expected` answered or `max_calls` were made; returns
// the pods that never answered.
std::set<std::string> Unreached(grpc::testing::TestService::Stub& stub,
                                const std::set<std::string>& expected, int max_calls) {
  std::mutex mu;
  std::set<std::string> missing = expected;
  std::atomic<int> calls{0};
  std::atomic<int> failures{0};
  auto worker = [&] {
    while (calls.fetch_add(1) < max_calls) {
      std::string pod = CallForPodName(stub, milliseconds(5000), true);
      if (pod.empty()) ++failures;
      std::lock_guard<std::mutex> lock(mu);
      missing.erase(pod);
      if (missing.empty()) return;
    }
  };
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i) threads.emplace_back(worker);
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0) << "failed calls";
  return missing;
}

class SandboxBigServiceTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    // 2,000 pods: the xDS client and the proxy each hold a connection to every one, and the
    // sandbox the other end of both. Children inherit the raised limit.
    rlimit limit{};
    getrlimit(RLIMIT_NOFILE, &limit);
    limit.rlim_cur = limit.rlim_max;
    setrlimit(RLIMIT_NOFILE, &limit);

    g_shared = new Shared;
    Shared& s = *g_shared;
    s.cluster = std::make_unique<SandboxCluster>(20, kPods);
    if (!s.cluster->started()) return;
    // Round robin everywhere, so a sweep of ~2,000 calls reaches every pod.
    std::string out;
    if (RunCommand({"kubectl", "--kubeconfig", s.cluster->kubeconfig(), "annotate", "service",
                    "greeter", "podlb.io/lb-policy=round_robin"},
                   &out) != 0) {
      ADD_FAILURE() << "kubectl annotate: " << out;
      return;
    }
    s.control_plane = std::make_unique<ControlPlaneProcess>(std::vector<std::string>{
        "--kubeconfig", s.cluster->kubeconfig(), "--listen", "127.0.0.1:0", "--log-level",
        "warn"});
    if (!s.control_plane->WaitReady()) return;
    s.proxy = std::make_unique<ChildProcess>(std::vector<std::string>{
        PodlbBinary(), "proxy", "--kubeconfig", s.cluster->kubeconfig(), "--listen",
        "127.0.0.1:0=default/greeter:grpc", "--admin", "", "--workers", "1"});
    if (!s.proxy->WaitForLineContaining("listening on 127.0.0.1:", SandboxCluster::kTimeout)) {
      return;
    }
    for (const std::string& line : s.proxy->Lines()) {
      auto at = line.find("listening on 127.0.0.1:");
      if (at == std::string::npos) continue;
      s.proxy_stub = grpc::testing::TestService::NewStub(grpc::CreateChannel(
          "127.0.0.1:" + std::to_string(std::stoi(line.substr(at + 23))),
          grpc::InsecureChannelCredentials()));
    }
    nlohmann::json bootstrap = {
        {"xds_servers",
         {{{"server_uri", "127.0.0.1:" + std::to_string(s.control_plane->xds_port())},
           {"channel_creds", {{{"type", "insecure"}}}},
           {"server_features", {"xds_v3", "ignore_resource_deletion"}}}}},
        {"node", {{"id", "sandbox-big-service-test"}, {"locality", {{"zone", "z1"}}}}}};
    s.bootstrap = bootstrap.dump();
    setenv("GRPC_XDS_BOOTSTRAP_CONFIG", s.bootstrap.c_str(), 1);
    s.xds_stub = grpc::testing::TestService::NewStub(grpc::CreateChannel(
        "xds:///greeter.default:50051", grpc::InsecureChannelCredentials()));
  }

  static void TearDownTestSuite() {
    if (g_shared != nullptr) {
      g_shared->xds_stub.reset();
      g_shared->proxy_stub.reset();
    }
    delete g_shared;
    g_shared = nullptr;
  }

  void SetUp() override {
    ASSERT_NE(g_shared->xds_stub, nullptr) << "the sandbox, control plane or proxy did not start";
    ASSERT_NE(g_shared->proxy_stub, nullptr);
  }

  // Reads the control plane's EDS pushes until one lists `n` healthy endpoints none of which is
  // in `gone`; every push read on the way must keep each address of `keep`.
  static std::set<std::string> WaitForEndpoints(AdsTestClient& ads, size_t n,
                                                const std::set<std::string>& keep = {},
                                                const std::set<std::string>& gone = {}) {
    auto deadline = Clock::now() + kLongTimeout;
    size_t pushes = 0, last_healthy = 0;
    while (Clock::now() < deadline) {
      auto response = ads.Read();
      if (!response) break;
      ++pushes;
      ads.Ack(*response, {kCluster});
      std::set<std::string> healthy = HealthyAddresses(*response);
      last_healthy = healthy.size();
      size_t kept = 0;
      for (const std::string& a : keep) kept += healthy.count(a);
      EXPECT_EQ(kept, keep.size()) << "a push dropped a sibling of the changed slice";
      bool any_gone = false;
      for (const std::string& a : gone) any_gone = any_gone || healthy.count(a) > 0;
      if (healthy.size() == n && !any_gone) return healthy;
    }
    ADD_FAILURE() << "the control plane never listed " << n << " healthy endpoints (" << pushes
                  << " pushes read, the last with " << last_healthy << " healthy)";
    return {};
  }

  // Pod names by address, from kubectl.
  static std::set<std::string> PodsAt(const std::set<std::string>& addresses) {
    std::set<std::string> pods;
    for (const auto& [pod, ip] : g_shared->cluster->PodIps()) {
      if (addresses.count(ip)) pods.insert(pod);
    }
    return pods;
  }
};

TEST_F(SandboxBigServiceTest, EveryPodAnswersAndAReplacedPodKeepsItsSlicesSiblings) {
  AdsTestClient ads("127.0.0.1:" + std::to_string(g_shared->control_plane->xds_port()),
                    grpc::InsecureChannelCredentials(), "big-service-watcher",
                    std::chrono::seconds(300));
  ASSERT_TRUE(ads.Subscribe(xds::kClusterLoadAssignmentType, {kCluster}));
  std::set<std::string> addresses = WaitForEndpoints(ads, kPods);
  ASSERT_EQ(addresses.size(), static_cast<size_t>(kPods));
  std::set<std::string> pods = PodsAt(addresses);
  ASSERT_EQ(pods.size(), static_cast<size_t>(kPods));

  EXPECT_EQ(Unreached(*g_shared->xds_stub, pods, 5 * kPods), std::set<std::string>{})
      << "pods the xDS client never reached";
  EXPECT_EQ(Unreached(*g_shared->proxy_stub, pods, 5 * kPods), std::set<std::string>{})
      << "pods the proxy never reached";

  // Replace one pod: its slice changes (the pod drains, then leaves; the new pod joins).
  const std::string victim = *pods.begin();
  std::string victim_ip;
  for (const auto& [pod, ip] : g_shared->cluster->PodIps()) {
    if (pod == victim) victim_ip = ip;
  }
  ASSERT_FALSE(victim_ip.empty());
  std::set<std::string> siblings = addresses;
  siblings.erase(victim_ip);
  ASSERT_TRUE(g_shared->cluster->DeletePod(victim));
  std::set<std::string> after = WaitForEndpoints(ads, kPods, siblings, {victim_ip});
  ASSERT_EQ(after.size(), static_cast<size_t>(kPods));
  for (const std::string& a : siblings) ASSERT_TRUE(after.count(a)) << a;

  std::set<std::string> new_pods = PodsAt(after);
  ASSERT_EQ(new_pods.size(), static_cast<size_t>(kPods));
  EXPECT_FALSE(new_pods.count(victim));
  EXPECT_EQ(Unreached(*g_shared->xds_stub, new_pods, 5 * kPods), std::set<std::string>{})
      << "pods the xDS client never reached after the change";
  EXPECT_EQ(Unreached(*g_shared->proxy_stub, new_pods, 5 * kPods), std::set<std::string>{})
      << "pods the proxy never reached after the change";
}

}  // namespace
}  // namespace podlb::testing
