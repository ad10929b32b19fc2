// The workload controllers as kubectl sees them, through the API-server stand-in over TLS:
// a DaemonSet applied from a manifest, `kubectl get ds`, `kubectl rollout status ds/NAME` and
// `kubectl rollout restart daemonset`; a pod whose image the sandbox cannot run, Pending with
// ErrImageNeverPull in `kubectl get pods`, its Warning event in `kubectl describe pod` and
// `kubectl get events`. Pods are objects only (NullPodRuntime behind the routing runtime).
#include <regex>
#include <set>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sandbox/apiserver/api_server.h"
#include "sandbox/controllers/daemonset_controller.h"
#include "sandbox/controllers/deployment_controller.h"
#include "sandbox/pods/routing_pod_runtime.h"
#include "support/process.h"

namespace podlb::sandbox {
namespace {

using json = nlohmann::json;
using ::testing::HasSubstr;
using namespace std::chrono_literals;

constexpr char kDaemonSet[] = R"(apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: proxy
  namespace: default
spec:
  selector:
    matchLabels: {app: proxy}
  updateStrategy:
    type: RollingUpdate
    rollingUpdate: {maxUnavailable: 1}
  template:
    metadata:
      labels: {app: proxy}
    spec:
      containers:
        - name: proxy
          image: podlb/backend-pod
          ports: [{containerPort: 7200}]
)";

constexpr char kNginx[] = R"(apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: default
spec:
  replicas: 1
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
        - name: web
          image: nginx:1.25
)";

class WorkloadKubectlTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ApiServerOptions options;
    options.tokens = {"good-token"};
    server_ = std::make_unique<ApiServer>(options, store_);
    ASSERT_TRUE(server_->Start().ok());
    kubeconfig_ = dir_.path() + "/kubeconfig";
    podlb::testing::WriteFile(kubeconfig_,
                              MakeKubeconfig(server_->url(), server_->ca_pem(), "good-token"));
    DaemonSetControllerOptions ds_options;
    ds_options.grace_period = 50ms;
    daemonsets_ = std::make_unique<DaemonSetController>(*store_, routing_, ips_, ds_options);
    DeploymentControllerOptions deployment_options;
    deployment_options.grace_period = 50ms;
    deployments_ =
        std::make_unique<DeploymentController>(*store_, routing_, ips_, deployment_options);
    ASSERT_TRUE(daemonsets_->Start().ok());
    ASSERT_TRUE(deployments_->Start().ok());
  }
  void TearDown() override {
    if (deployments_) deployments_->Stop();
    if (daemonsets_) daemonsets_->Stop();
  }

  int Run(std::vector<std::string> args, std::string* output) {
    std::vector<std::string> argv = {"kubectl", "--kubeconfig", kubeconfig_, "--cache-dir",
                                     dir_.path() + "/cache"};
    argv.insert(argv.end(), args.begin(), args.end());
    return podlb::testing::RunCommand(argv, output, 60s);
  }
  std::string Apply(const std::string& name, const std::string& manifest) {
    std::string path = dir_.path() + "/" + name;
    podlb::testing::WriteFile(path, manifest);
    return path;
  }
  std::set<std::string> PodNames() {
    std::set<std::string> names;
    for (const auto& p : store_->List("pods", "default", LabelSelector{}).items) {
      names.insert(p["metadata"]["name"]);
    }
    return names;
  }

  std::shared_ptr<ResourceStore> store_ = std::make_shared<ResourceStore>();
  std::unique_ptr<ApiServer> server_;
  podlb::testing::TempDir dir_;
  std::string kubeconfig_;
  NullPodRuntime backends_;
  RoutingPodRuntime routing_{backends_, nullptr};
  PodIpAllocator ips_{"127.0.7.2"};
  std::unique_ptr<DaemonSetController> daemonsets_;
  std::unique_ptr<DeploymentController> deployments_;
};

TEST_F(WorkloadKubectlTest, DaemonSetRollsOutAndRestartsNodeByNode) {
  std::string output;
  ASSERT_EQ(Run({"apply", "-f", Apply("ds.yaml", kDaemonSet)}, &output), 0) << output;
  EXPECT_THAT(output, HasSubstr("daemonset.apps/proxy created"));
  ASSERT_EQ(Run({"rollout", "status", "ds/proxy", "--timeout=30s"}, &output), 0) << output;
  EXPECT_THAT(output, HasSubstr("daemon set \"proxy\" successfully rolled out"));

  ASSERT_EQ(Run({"get", "ds"}, &output), 0) << output;
  EXPECT_TRUE(std::regex_search(
      output, std::regex("NAME +DESIRED +CURRENT +READY +UP-TO-DATE +AVAILABLE +NODE SELECTOR")))
      << output;
  EXPECT_TRUE(std::regex_search(output, std::regex("proxy +3 +3 +3 +3 +3 +<none>"))) << output;
  ASSERT_EQ(Run({"get", "pods", "-o", "custom-columns=NODE:.spec.nodeName", "--sort-by",
                 ".spec.nodeName"},
                &output),
            0)
      << output;
  EXPECT_EQ(output, "NODE\nnode-a\nnode-b\nnode-c\n");

  std::set<std::string> before = PodNames();
  ASSERT_EQ(before.size(), 3u);
  ASSERT_EQ(Run({"rollout", "restart", "daemonset/proxy"}, &output), 0) << output;
  EXPECT_THAT(output, HasSubstr("daemonset.apps/proxy restarted"));
  ASSERT_EQ(Run({"rollout", "status", "ds/proxy", "--timeout=30s"}, &output), 0) << output;
  EXPECT_THAT(output, HasSubstr("daemon set \"proxy\" successfully rolled out"));
  // rollout status returns once every node runs an available pod of the new template; the
  // old pods may still be going.
  ASSERT_TRUE(podlb::testing::WaitFor([&] { return PodNames().size() == 3; }, 30s,
                                      "the old pods to be gone"));
  for (const auto& name : PodNames()) EXPECT_FALSE(before.count(name)) << name;

  ASSERT_EQ(Run({"delete", "ds", "proxy"}, &output), 0) << output;
  ASSERT_TRUE(podlb::testing::WaitFor([&] { return PodNames().empty(); }, 30s, "the pods to go"));
}

TEST_F(WorkloadKubectlTest, PodOfAnImageTheSandboxCannotRunIsPendingWithAnEvent) {
  std::string output;
  ASSERT_EQ(Run({"apply", "-f", Apply("web.yaml", kNginx)}, &output), 0) << output;
  ASSERT_TRUE(podlb::testing::WaitFor(
      [&] {
        Run({"get", "pods"}, &output);
        return output.find("ErrImageNeverPull") != std::string::npos;
      },
      30s, "kubectl get pods to show ErrImageNeverPull"));
  EXPECT_TRUE(
      std::regex_search(output, std::regex("web-[a-z0-9]{10}-[a-z0-9]{5} +0/1 +ErrImageNeverPull")))
      << output;
  std::string pod = *PodNames().begin();
  const std::string message =
      "Failed to pull image \"nginx:1.25\": the sandbox runs only podlb's images (podlb, "
      "podlb-demo) and its gRPC test backend (podlb/backend-pod)";

  ASSERT_EQ(Run({"describe", "pod", pod}, &output), 0) << output;
  EXPECT_TRUE(std::regex_search(output, std::regex("\nStatus: +Pending\n"))) << output;
  EXPECT_THAT(output, HasSubstr("Reason:       ErrImageNeverPull"));
  EXPECT_TRUE(std::regex_search(output, std::regex("Warning +Failed +[0-9]+s +kubelet +Failed")))
      << output;
  EXPECT_THAT(output, HasSubstr(message));
  EXPECT_TRUE(std::regex_search(output, std::regex("Normal +Scheduled +[0-9]+s +default-scheduler "
                                                   "+Successfully assigned default/" +
                                                   pod)))
      << output;

  ASSERT_EQ(Run({"get", "events"}, &output), 0) << output;
  EXPECT_TRUE(std::regex_search(output, std::regex("Warning +Failed +pod/" + pod))) << output;
  EXPECT_THAT(output, HasSubstr("the sandbox runs only podlb's images"));

  ASSERT_EQ(Run({"get", "deployment", "web"}, &output), 0) << output;
  EXPECT_TRUE(std::regex_search(output, std::regex("web +0/1 +1 +0"))) << output;
}

}  // namespace
}  // namespace podlb::sandbox
