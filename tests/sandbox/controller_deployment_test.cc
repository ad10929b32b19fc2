// DeploymentController + EndpointSliceController against the ResourceStore, with pods that are
// only objects (NullPodRuntime): scaling, pod naming and placement, scale-down order, and a
// rolling restart that never publishes fewer ready endpoints than replicas.
#include <map>
#include <regex>
#include <set>

#include "gtest/gtest.h"
#include "sandbox/controller_test_support.h"
#include "sandbox/controllers/deployment_controller.h"
#include "sandbox/controllers/endpointslice_controller.h"
#include "sandbox/seed_objects.h"

namespace podlb::sandbox {
namespace {

using json = nlohmann::json;
using testing::CountReady;
using testing::EndpointsOf;
using testing::ExactlyReady;
using testing::Objects;
using testing::WaitForObjects;
constexpr auto kTimeout = std::chrono::seconds(20);

class DeploymentControllerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    DeploymentControllerOptions options;
    options.grace_period = std::chrono::milliseconds(50);
    options.readiness_delay = std::chrono::milliseconds(20);
    deployments_ = std::make_unique<DeploymentController>(store_, runtime_, ips_, options);
    EndpointSliceControllerOptions slice_options;
    slice_options.max_endpoints_per_slice = 4;
    slices_ = std::make_unique<EndpointSliceController>(store_, slice_options);
    ASSERT_TRUE(slices_->Start().ok());
    ASSERT_TRUE(deployments_->Start().ok());
    ASSERT_TRUE(store_.Create("services", "default", GreeterService(7000)).ok());
    ASSERT_TRUE(store_.Create("deployments", "default", GreeterDeployment(3, 7000)).ok());
  }
  void TearDown() override {
    deployments_->Stop();
    slices_->Stop();
  }
  void Scale(int replicas) {
    ASSERT_TRUE(MutateObject(store_, "deployments", "default", "greeter", [&](json& d) {
                  d["spec"]["replicas"] = replicas;
                  return true;
                }).ok());
  }
  [[nodiscard]] ::testing::AssertionResult WaitSlices(
      const std::function<bool(const Objects&)>& done, const std::string& what) {
    return WaitForObjects(store_, "endpointslices", "default", done, kTimeout, what);
  }
  std::set<std::string> PodNames() {
    std::set<std::string> names;
    for (const auto& p : store_.List("pods", "default", LabelSelector{}).items) {
      names.insert(p["metadata"]["name"]);
    }
    return names;
  }

  ResourceStore store_;
  NullPodRuntime runtime_;
  PodIpAllocator ips_{"127.0.3.2"};
  std::unique_ptr<DeploymentController> deployments_;
  std::unique_ptr<EndpointSliceController> slices_;
};

TEST_F(DeploymentControllerTest, RunsReplicasAsPodsWithIpNodeAndLabels) {
  ASSERT_TRUE(WaitSlices(ExactlyReady(3), "3 ready endpoints"));
  ASSERT_TRUE(WaitForObjects(
      store_, "pods", "default", [](const Objects& pods) { return pods.size() == 3; }, kTimeout,
      "3 pods"));
  std::set<std::string> ips, nodes;
  for (const auto& pod : store_.List("pods", "default", LabelSelector{}).items) {
    std::string name = pod["metadata"]["name"];
    EXPECT_TRUE(std::regex_match(name, std::regex("greeter-[a-z0-9]{10}-[a-z0-9]{5}"))) << name;
    EXPECT_EQ(pod["metadata"]["labels"]["app"], "greeter");
    EXPECT_TRUE(pod["metadata"]["labels"].contains("pod-template-hash"));
    EXPECT_EQ(pod["status"]["phase"], "Running");
    ips.insert(pod["status"]["podIP"].get<std::string>());
    nodes.insert(pod["spec"]["nodeName"].get<std::string>());
  }
  EXPECT_EQ(ips.size(), 3u);
  EXPECT_EQ(nodes, (std::set<std::string>{"node-a", "node-b", "node-c"}));
  // The deployment's status follows, as `kubectl get deployment` shows it.
  ASSERT_TRUE(WaitForObjects(
      store_, "deployments", "default",
      [](const Objects& d) {
        return d.size() == 1 && d[0].value("status", json::object()).value("readyReplicas", 0) == 3;
      },
      kTimeout, "readyReplicas 3"));
}

TEST_F(DeploymentControllerTest, ScaleUpThenDownRemovesNewestPods) {
  ASSERT_TRUE(WaitSlices(ExactlyReady(3), "3 ready endpoints"));
  std::set<std::string> first_three = PodNames();
  Scale(6);
  ASSERT_TRUE(WaitSlices(ExactlyReady(6), "6 ready endpoints"));
  EXPECT_EQ(store_.List("endpointslices", "default", LabelSelector{}).items.size(), 2u);  // max 4
  Scale(2);
  ASSERT_TRUE(WaitSlices(ExactlyReady(2), "2 ready endpoints"));
  ASSERT_TRUE(WaitForObjects(
      store_, "pods", "default", [](const Objects& pods) { return pods.size() == 2; }, kTimeout,
      "terminated pods deleted"));
  for (const auto& name : PodNames()) {
    EXPECT_TRUE(first_three.count(name)) << name << " is newer than the pods that were removed";
  }
}

TEST_F(DeploymentControllerTest, ScaleDownGoesThroughTerminating) {
  ASSERT_TRUE(WaitSlices(ExactlyReady(3), "3 ready endpoints"));
  Scale(2);
  ASSERT_TRUE(WaitSlices(
      [](const Objects& s) {
        for (const auto& e : EndpointsOf(s)) {
          if (e.terminating && e.serving && !e.ready) return true;
        }
        return false;
      },
      "a terminating, still serving endpoint"));
  ASSERT_TRUE(WaitSlices(ExactlyReady(2), "2 ready endpoints"));
}

TEST_F(DeploymentControllerTest, DeletedPodIsReplaced) {
  ASSERT_TRUE(WaitSlices(ExactlyReady(3), "3 ready endpoints"));
  std::set<std::string> before = PodNames();
  std::string victim = *before.begin();
  ASSERT_TRUE(store_.Delete("pods", "default", victim).ok());  // `kubectl delete pod`
  ASSERT_TRUE(WaitSlices(
      [&](const Objects& s) {
        if (!ExactlyReady(3)(s)) return false;
        for (const auto& e : EndpointsOf(s)) {
          if (e.pod == victim) return false;
        }
        return true;
      },
      "a replacement for the deleted pod"));
  EXPECT_EQ(PodNames().size(), 3u);
}

TEST_F(DeploymentControllerTest, RollingRestartKeepsReplicasReadyAndReplacesEveryPod) {
  ASSERT_TRUE(WaitSlices(ExactlyReady(3), "3 ready endpoints"));
  std::set<std::string> old_pods = PodNames();

  // Follow the published slices event by event from here on.
  auto listed = store_.List("endpointslices", "default", LabelSelector{});
  std::map<std::string, json> slices;
  for (auto& s : listed.items) slices[s["metadata"]["name"]] = s;
  auto watcher =
      store_.Watch("endpointslices", "default", LabelSelector{}, listed.resource_version);
  ASSERT_TRUE(watcher.ok());

  ASSERT_TRUE(
      MutateObject(store_, "deployments", "default", "greeter", [](json& d) {
        d["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"] =
            "2024-05-01T10:00:00Z";
        return true;
      }).ok());

  auto deadline = std::chrono::steady_clock::now() + kTimeout;
  int min_ready = 3, events = 0;
  bool done = false;
  while (!done && std::chrono::steady_clock::now() < deadline) {
    auto event = (*watcher)->Next(std::chrono::milliseconds(500));
    if (!event) continue;
    ++events;
    std::string name = event->object["metadata"]["name"];
    if (event->type == "DELETED") {
      slices.erase(name);
    } else {
      slices[name] = event->object;
    }
    Objects current;
    for (const auto& [n, s] : slices) current.push_back(s);
    min_ready = std::min(min_ready, CountReady(current));
    auto eps = EndpointsOf(current);
    done = eps.size() == 3 && CountReady(current) == 3;
    for (const auto& e : eps) done = done && !old_pods.count(e.pod);
  }
  EXPECT_TRUE(done) << "rollout did not finish";
  EXPECT_EQ(min_ready, 3) << "fewer ready endpoints than replicas were published";
  EXPECT_GT(events, 6);
  for (const auto& name : PodNames()) EXPECT_FALSE(old_pods.count(name));
}

}  // namespace
}  // namespace podlb::sandbox
