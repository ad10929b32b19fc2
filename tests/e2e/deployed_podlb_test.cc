// podlb deployed the way a user deploys it: `kubectl apply -f deploy/` into `podlb sandbox`,
// which runs the control-plane Deployment (2 replicas) and the node-proxy DaemonSet (one pod per
// Node) as podlb processes under enforced RBAC (each with its ServiceAccount's token mounted),
// probes them from the manifests, serves their logs, and gives their Services ClusterIPs through
// its kube-proxy. Then, as clients nobody here wrote:
// - Debian's grpc++ xDS client, bootstrapped at the control plane's ClusterIP, balances over
//   default/greeter and follows a scale-up;
// - a plain grpc++ client through the node proxy's ClusterIP does the same;
// - `kubectl rollout restart` of the control plane drops no call of the xDS client.
// A second test applies a ClusterRole missing `watch` on endpointslices: the deployed control
// plane's log (`kubectl logs`) names the verb and says it retries.
#include <grpcpp/grpcpp.h>

#include <atomic>
#include <regex>
#include <thread>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "support/greeter_call.h"
#include "support/process.h"
#include "support/sandbox_cluster.h"

namespace podlb::testing {
namespace {

using json = nlohmann::json;
using ::testing::HasSubstr;
using std::chrono::milliseconds;
using namespace std::chrono_literals;

class DeployedPodlbTest : public ::testing::Test {
 protected:
  void SetUp() override {
    cluster_ = std::make_unique<SandboxCluster>(9);
    ASSERT_TRUE(cluster_->started());
  }

  int Kubectl(std::vector<std::string> args, std::string* output,
              std::chrono::seconds timeout = 60s) {
    std::vector<std::string> argv = {"kubectl", "--kubeconfig", cluster_->kubeconfig(),
                                     "--cache-dir", cluster_->dir() + "/kubectl-cache"};
    argv.insert(argv.end(), args.begin(), args.end());
    return RunCommand(argv, output, timeout);
  }
  std::string KubectlOk(std::vector<std::string> args) {
    std::string output;
    EXPECT_EQ(Kubectl(args, &output), 0) << output;
    return output;
  }

  // podlb-system's pods by name, as kubectl sees them.
  std::map<std::string, json> SystemPods() {
    std::map<std::string, json> pods;
    json list = json::parse(KubectlOk({"get", "pods", "-n", "podlb-system", "-o", "json"}),
                            nullptr, false);
    if (list.is_discarded()) return pods;
    for (const auto& pod : list["items"]) pods[pod["metadata"]["name"]] = pod;
    return pods;
  }

  static bool Ready(const json& pod) {
    for (const auto& c : pod["status"].value("conditions", json::array())) {
      if (c.value("type", "") == "Ready") return c.value("status", "") == "True";
    }
    return false;
  }

  std::string ClusterIp(const std::string& service) {
    return KubectlOk({"get", "service", service, "-n", "podlb-system", "-o",
                      "jsonpath={.spec.clusterIP}"});
  }

  std::unique_ptr<SandboxCluster> cluster_;
};

std::unique_ptr<grpc::testing::TestService::Stub> g_xds_stub;
std::unique_ptr<grpc::testing::TestService::Stub> g_proxy_stub;

std::string XdsCall(milliseconds timeout, bool wait_for_ready) {
  return CallForPodName(*g_xds_stub, timeout, wait_for_ready);
}
std::string ProxyCall(milliseconds timeout, bool wait_for_ready) {
  return CallForPodName(*g_proxy_stub, timeout, wait_for_ready);
}

TEST_F(DeployedPodlbTest, AppliedManifestsRunAndServeXdsAndProxyClients) {
  // Round robin for the greeter, so the spread asserted below does not depend on which pod a
  // loaded machine answers fastest from (the proxy's default, peak EWMA, would follow that).
  KubectlOk({"annotate", "service", "greeter", "podlb.io/lb-policy=round_robin"});
  KubectlOk({"apply", "-f", SourceDir() + "/deploy"});
  std::string output;
  ASSERT_EQ(Kubectl({"rollout", "status", "deployment/podlb-control-plane", "-n", "podlb-system",
                     "--timeout=90s"},
                    &output, 100s),
            0)
      << output;
  ASSERT_EQ(Kubectl({"rollout", "status", "daemonset/podlb-proxy", "-n", "podlb-system",
                     "--timeout=90s"},
                    &output, 100s),
            0)
      << output;

  // Two control planes and one proxy per Node, all Running and Ready, each on its own IP.
  std::map<std::string, json> pods = SystemPods();
  int control_planes = 0;
  std::set<std::string> proxy_nodes, ips;
  for (const auto& [name, pod] : pods) {
    EXPECT_EQ(pod["status"]["phase"], "Running") << name;
    EXPECT_TRUE(Ready(pod)) << name;
    ips.insert(pod["status"].value("podIP", ""));
    if (name.starts_with("podlb-control-plane-")) ++control_planes;
    if (name.starts_with("podlb-proxy-")) proxy_nodes.insert(pod["spec"].value("nodeName", ""));
  }
  EXPECT_EQ(control_planes, 2);
  EXPECT_EQ(proxy_nodes, (std::set<std::string>{"node-a", "node-b", "node-c"}));
  EXPECT_EQ(ips.size(), pods.size());
  // `kubectl logs` shows what each wrote: the control plane serves ADS on its pod IP.
  for (const auto& [name, pod] : pods) {
    if (!name.starts_with("podlb-control-plane-")) continue;
    EXPECT_THAT(KubectlOk({"logs", "-n", "podlb-system", name}),
                HasSubstr("serving ADS on " + pod["status"].value("podIP", "") + ":18000"));
  }

  // The xDS client, bootstrapped at the control plane's stable address.
  const std::string xds_ip = ClusterIp("podlb-control-plane");
  ASSERT_FALSE(xds_ip.empty());
  json bootstrap = {{"xds_servers",
                     {{{"server_uri", xds_ip + ":18000"},
                       {"channel_creds", {{{"type", "insecure"}}}},
                       {"server_features", {"xds_v3", "ignore_resource_deletion"}}}}},
                    {"node", {{"id", "deployed-podlb-test"}, {"locality", {{"zone", "zone-a"}}}}}};
  setenv("GRPC_XDS_BOOTSTRAP_CONFIG", bootstrap.dump().c_str(), 1);
  g_xds_stub = grpc::testing::TestService::NewStub(
      grpc::CreateChannel("xds:///greeter.default:50051", grpc::InsecureChannelCredentials()));
  cluster_->ExpectEvenSpreadOverThreePods(XdsCall);

  // A plain client through the node proxy's Service (internalTrafficPolicy: Local: this
  // machine is node-a, so its proxy answers), on the port bound to default/greeter.
  const std::string proxy_ip = ClusterIp("podlb-proxy");
  ASSERT_FALSE(proxy_ip.empty());
  g_proxy_stub = grpc::testing::TestService::NewStub(
      grpc::CreateChannel(proxy_ip + ":50052", grpc::InsecureChannelCredentials()));
  cluster_->ExpectEvenSpreadOverThreePods(ProxyCall);

  // Both follow a scale-up: every new pod answers within a second of being listed ready.
  cluster_->ExpectScaledUpPodsTakeCallsPromptly(XdsCall);
  std::set<std::string> six = cluster_->WaitReadyPods(6);
  EXPECT_TRUE(SandboxCluster::WaitClientUses(ProxyCall, six));

  // The control plane restarts pod by pod under a caller that never stops: no call fails.
  std::atomic<bool> stop{false};
  std::atomic<int> calls{0}, failures{0};
  std::thread caller([&] {
    while (!stop.load()) {
      if (XdsCall(2000ms, false).empty()) ++failures;
      ++calls;
    }
  });
  std::set<std::string> before;
  for (const auto& [name, pod] : SystemPods()) {
    if (name.starts_with("podlb-control-plane-")) before.insert(name);
  }
  KubectlOk({"rollout", "restart", "deployment/podlb-control-plane", "-n", "podlb-system"});
  EXPECT_EQ(Kubectl({"rollout", "status", "deployment/podlb-control-plane", "-n", "podlb-system",
                     "--timeout=90s"},
                    &output, 100s),
            0)
      << output;
  // The old control planes are gone once the rollout finished; the client now talks to a new
  // one, which it shows by following another scale change.
  cluster_->Run("scale", {"4"});
  std::set<std::string> four = cluster_->WaitReadyPods(4);
  EXPECT_TRUE(SandboxCluster::WaitClientUses(XdsCall, four));
  stop = true;
  caller.join();
  EXPECT_EQ(failures.load(), 0) << "of " << calls.load() << " calls";
  EXPECT_GT(calls.load(), 0);
  for (const auto& [name, pod] : SystemPods()) EXPECT_FALSE(before.count(name)) << name;
  g_xds_stub.reset();
  g_proxy_stub.reset();
}

TEST_F(DeployedPodlbTest, RoleWithoutWatchIsNamedInTheControlPlanesLog) {
  // deploy/ with `watch` taken out of the endpointslices rule.
  TempDir deploy;
  for (const char* file : {"00-namespace.yaml", "01-rbac.yaml", "control-plane.yaml"}) {
    std::string text = ReadFile(SourceDir() + "/deploy/" + file);
    if (std::string(file) == "01-rbac.yaml") {
      std::string cut = std::regex_replace(
          text, std::regex(R"((resources: \["endpointslices"\]\s*\n\s*verbs: \[)"
                           R"("get", "list"), "watch"\])"),
          "$1]");
      ASSERT_NE(cut, text) << "deploy/01-rbac.yaml changed shape; update this test";
      text = cut;
    }
    WriteFile(deploy.path() + "/" + file, text);
  }
  KubectlOk({"apply", "-f", deploy.path()});
  // The control planes start, are refused the watch, and say so naming the verb and that they
  // retry (tests/e2e/rbac_podlb_test.cc shows the retry succeed once the verb is granted). Each
  // `kubectl get`/`logs` round trip is the wait.
  const std::string refused = "403 Forbidden watching endpointslices in all namespaces";
  auto count = [&](const std::string& text) {
    size_t n = 0;
    for (size_t at = text.find(refused); at != std::string::npos; at = text.find(refused, at + 1)) {
      ++n;
    }
    return n;
  };
  std::string logs;
  for (int attempt = 0; attempt < 300 && count(logs) < 1; ++attempt) {
    for (const auto& [pod, object] : SystemPods()) {
      if (!pod.starts_with("podlb-control-plane-")) continue;
      std::string output;
      if (Kubectl({"logs", "-n", "podlb-system", pod}, &output) == 0 && count(output) > count(logs)) {
        logs = output;
      }
    }
  }
  ASSERT_GE(count(logs), 1u) << logs;
  EXPECT_THAT(logs, HasSubstr("cannot watch resource \"endpointslices\""));
  EXPECT_THAT(logs, HasSubstr("retrying with backoff"));
}

}  // namespace
}  // namespace podlb::testing
