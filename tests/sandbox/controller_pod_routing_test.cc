// Pods routed by image (RoutingPodRuntime) under the DeploymentController and the real store:
// the backend image runs as a real gRPC pod; any other image, and podlb's own image when the
// sandbox has no runtime for it, stays Pending with the kubelet's waiting reason and a Warning
// event, and is not retried; a pod whose runtime drains it itself is stopped with the pod's own
// terminationGracePeriodSeconds rather than the sandbox's grace period.
#include <map>
#include <set>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sandbox/controller_test_support.h"
#include "sandbox/controllers/deployment_controller.h"
#include "sandbox/pods/routing_pod_runtime.h"
#include "sandbox/seed_objects.h"
#include "support/process.h"

namespace podlb::sandbox {
namespace {

using json = nlohmann::json;
using ::testing::HasSubstr;
using testing::Objects;
using testing::WaitForObjects;
constexpr auto kTimeout = std::chrono::seconds(20);

json Deployment(const std::string& name, const std::string& image, int replicas, int port,
                std::optional<int> termination_grace_seconds = std::nullopt) {
  json labels = {{"app", name}};
  json spec = {
      {"containers", json::array({{{"name", "main"},
                                   {"image", image},
                                   {"ports", json::array({{{"containerPort", port}}})}}})}};
  if (termination_grace_seconds) spec["terminationGracePeriodSeconds"] = *termination_grace_seconds;
  return {{"apiVersion", "apps/v1"},
          {"kind", "Deployment"},
          {"metadata", {{"name", name}, {"namespace", "default"}}},
          {"spec",
           {{"replicas", replicas},
            {"selector", {{"matchLabels", labels}}},
            {"template", {{"metadata", {{"labels", labels}}}, {"spec", spec}}}}}};
}

// podlb's runtime as the routing sees it: a process that drains itself on SIGTERM. Records the
// calls that reach it; nothing runs.
class DrainingRuntime : public PodRuntime {
 public:
  absl::Status StartPod(const PodLaunch& launch) override {
    Record("start " + launch.name);
    absl::MutexLock lock(&mu_);
    launches_.push_back(launch);
    return absl::OkStatus();
  }
  absl::Status ProbeReadiness(const std::string& name) override {
    Record("probe " + name);
    return absl::OkStatus();
  }
  void BeginTermination(const std::string& name) override { Record("terminate " + name); }
  void SetFault(const std::string& name, const PodFault&) override { Record("fault " + name); }
  void StopPod(const std::string& name, std::chrono::milliseconds deadline) override {
    Record("stop " + name + " " + std::to_string(deadline.count()) + "ms");
  }
  bool DrainsItself(const std::string&) const override { return true; }

  std::vector<std::string> calls() const {
    absl::MutexLock lock(&mu_);
    return calls_;
  }
  std::vector<PodLaunch> launches() const {
    absl::MutexLock lock(&mu_);
    return launches_;
  }

 private:
  void Record(std::string call) {
    absl::MutexLock lock(&mu_);
    if (calls_.empty() || calls_.back() != call) calls_.push_back(std::move(call));
  }
  mutable absl::Mutex mu_;
  std::vector<std::string> calls_ ABSL_GUARDED_BY(mu_);
  std::vector<PodLaunch> launches_ ABSL_GUARDED_BY(mu_);
};

TEST(ClassifyImageTest, ByRepositoryWhateverTheRegistryTagOrDigest) {
  EXPECT_EQ(ClassifyImage("podlb"), ImageKind::kPodlb);
  EXPECT_EQ(ClassifyImage("localhost/podlb:0.1.0"), ImageKind::kPodlb);
  EXPECT_EQ(ClassifyImage("localhost:5000/podlb:0.1.0"), ImageKind::kPodlb);
  EXPECT_EQ(ClassifyImage("ghcr.io/acme/podlb-demo@sha256:abc"), ImageKind::kPodlb);
  EXPECT_EQ(ClassifyImage(kBackendPodImage), ImageKind::kBackend);
  EXPECT_EQ(ClassifyImage("docker.io/podlb/backend-pod:1"), ImageKind::kBackend);
  EXPECT_EQ(ClassifyImage("nginx:1.25"), ImageKind::kOther);
  EXPECT_EQ(ClassifyImage("podlb-proxy:1"), ImageKind::kOther);
  EXPECT_EQ(ClassifyImage("localhost:5000/other:podlb"), ImageKind::kOther);
  EXPECT_EQ(ClassifyImage(""), ImageKind::kOther);
}

class PodRoutingTest : public ::testing::Test {
 protected:
  void Start(PodRuntime* podlb, std::chrono::milliseconds grace = std::chrono::milliseconds(50)) {
    routing_ = std::make_unique<RoutingPodRuntime>(backends_, podlb);
    DeploymentControllerOptions options;
    options.grace_period = grace;
    controller_ = std::make_unique<DeploymentController>(store_, *routing_, ips_, options);
    ASSERT_TRUE(controller_->Start().ok());
  }
  void TearDown() override {
    if (controller_) controller_->Stop();
    backends_.StopAll(std::chrono::milliseconds(0));
  }

  Objects PodsOf(const std::string& app) {
    auto selector = LabelSelector::Parse("app=" + app);
    EXPECT_TRUE(selector.ok());
    return store_.List("pods", "default", *selector).items;
  }
  Objects EventsAbout(const std::string& pod) {
    Objects out;
    for (auto& e : store_.List("events", "default", LabelSelector{}).items) {
      if (e["involvedObject"]["name"] == pod) out.push_back(e);
    }
    return out;
  }
  [[nodiscard]] ::testing::AssertionResult WaitWaitingReason(const std::string& app) {
    return WaitForObjects(
        store_, "pods", "default",
        [&](const Objects&) {
          auto pods = PodsOf(app);
          return pods.size() == 1 &&
                 pods[0]["status"]["containerStatuses"][0]["state"]["waiting"].value(
                     "reason", "") == "ErrImageNeverPull";
        },
        kTimeout, "a pod of " + app + " waiting with ErrImageNeverPull");
  }
  [[nodiscard]] ::testing::AssertionResult WaitRunning(const std::string& app, size_t n) {
    return WaitForObjects(
        store_, "pods", "default",
        [&](const Objects&) {
          auto pods = PodsOf(app);
          if (pods.size() != n) return false;
          for (const auto& p : pods) {
            if (p["status"]["phase"] != "Running") return false;
          }
          return true;
        },
        kTimeout, std::to_string(n) + " running pods of " + app);
  }

  ResourceStore store_;
  GrpcPodRuntime backends_;
  PodIpAllocator ips_{"127.0.6.2"};
  std::unique_ptr<RoutingPodRuntime> routing_;
  std::unique_ptr<DeploymentController> controller_;
};

TEST_F(PodRoutingTest, BackendImageRunsAsARealGrpcPod) {
  Start(nullptr);
  int port = podlb::testing::PickFreePort();
  ASSERT_TRUE(
      store_.Create("deployments", "default", Deployment("greeter", kBackendPodImage, 1, port))
          .ok());
  ASSERT_TRUE(WaitRunning("greeter", 1));
  std::string name = PodsOf("greeter")[0]["metadata"]["name"];
  ASSERT_NE(backends_.Find(name), nullptr);
  EXPECT_TRUE(routing_->ProbeReadiness(name).ok());
  std::set<std::string> reasons;
  for (const auto& e : EventsAbout(name)) reasons.insert(e["reason"].get<std::string>());
  EXPECT_EQ(reasons, (std::set<std::string>{"Scheduled", "Started"}));
}

TEST_F(PodRoutingTest, OtherImageStaysPendingWithAWarningEventAndIsNotRetried) {
  Start(nullptr);
  ASSERT_TRUE(store_.Create("deployments", "default", Deployment("web", "nginx:1.25", 1, 80)).ok());
  ASSERT_TRUE(WaitWaitingReason("web"));
  json pod = PodsOf("web")[0];
  std::string name = pod["metadata"]["name"];
  const std::string message =
      "Failed to pull image \"nginx:1.25\": the sandbox runs only podlb's images (podlb, "
      "podlb-demo) and its gRPC test backend (podlb/backend-pod)";
  EXPECT_EQ(pod["status"]["phase"], "Pending");
  EXPECT_EQ(pod["status"]["containerStatuses"][0]["state"]["waiting"]["message"], message);
  EXPECT_EQ(pod["status"]["containerStatuses"][0]["ready"], false);

  Objects events = EventsAbout(name);
  auto failed = std::find_if(events.begin(), events.end(),
                             [](const json& e) { return e["reason"] == "Failed"; });
  ASSERT_NE(failed, events.end()) << json(events).dump(1);
  EXPECT_EQ((*failed)["type"], "Warning");
  EXPECT_EQ((*failed)["message"], message);
  EXPECT_EQ((*failed)["count"], 1);
  EXPECT_EQ((*failed)["source"]["component"], "kubelet");
  EXPECT_EQ((*failed)["reportingComponent"], "kubelet");
  EXPECT_EQ((*failed)["involvedObject"]["kind"], "Pod");
  EXPECT_EQ((*failed)["involvedObject"]["uid"], pod["metadata"]["uid"]);
  EXPECT_FALSE((*failed)["firstTimestamp"].get<std::string>().empty());

  ASSERT_TRUE(WaitForObjects(
      store_, "deployments", "default",
      [](const Objects& d) {
        const json status = d.empty() ? json::object() : d[0].value("status", json::object());
        return status.value("replicas", 0) == 1 && status.value("unavailableReplicas", 0) == 1 &&
               status.value("readyReplicas", -1) == 0;
      },
      kTimeout, "web: 1 replica, unavailable"));

  // Not retried: by the time the controller has run another Deployment's pod to Ready, the
  // refused pod is the same one and its event was recorded once.
  int port = podlb::testing::PickFreePort();
  ASSERT_TRUE(
      store_.Create("deployments", "default", Deployment("greeter", kBackendPodImage, 1, port))
          .ok());
  ASSERT_TRUE(WaitRunning("greeter", 1));
  ASSERT_EQ(PodsOf("web").size(), 1u);
  EXPECT_EQ(PodsOf("web")[0]["metadata"]["name"], name);
  for (const auto& e : EventsAbout(name)) {
    if (e["reason"] == "Failed") {
      EXPECT_EQ(e["count"], 1);
    }
  }

  // Scaling down removes the pending pod at once: nothing runs to drain.
  ASSERT_TRUE(MutateObject(store_, "deployments", "default", "web", [](json& d) {
                d["spec"]["replicas"] = 0;
                return true;
              }).ok());
  ASSERT_TRUE(WaitForObjects(
      store_, "pods", "default", [&](const Objects&) { return PodsOf("web").empty(); }, kTimeout,
      "the pending pod deleted"));
}

TEST_F(PodRoutingTest, PodlbImageWithoutItsRuntimeStaysPendingSayingWhereItRuns) {
  Start(nullptr);
  ASSERT_TRUE(store_
                  .Create("deployments", "default",
                          Deployment("control-plane", "localhost/podlb:0.1.0", 1, 18000))
                  .ok());
  ASSERT_TRUE(WaitWaitingReason("control-plane"));
  json pod = PodsOf("control-plane")[0];
  EXPECT_EQ(pod["status"]["phase"], "Pending");
  EXPECT_EQ(pod["status"]["containerStatuses"][0]["state"]["waiting"]["message"],
            "Failed to pull image \"localhost/podlb:0.1.0\": podlb's image runs only under "
            "`podlb sandbox`, as a process of the podlb binary; this sandbox was started without "
            "a runtime for it");
}

TEST_F(PodRoutingTest, PodThatDrainsItselfIsStoppedWithItsOwnGracePeriod) {
  DrainingRuntime podlb;
  // The sandbox's grace period is longer than the test's timeout: the pod must not wait for it.
  Start(&podlb, std::chrono::minutes(5));
  ASSERT_TRUE(store_
                  .Create("deployments", "default",
                          Deployment("proxy", "localhost/podlb:0.1.0", 1, 15001, 7))
                  .ok());
  ASSERT_TRUE(WaitRunning("proxy", 1));
  json pod = PodsOf("proxy")[0];
  std::string name = pod["metadata"]["name"];
  ASSERT_EQ(podlb.launches().size(), 1u);
  PodLaunch launch = podlb.launches()[0];
  EXPECT_EQ(launch.name, name);
  EXPECT_EQ(launch.ns, "default");
  EXPECT_EQ(launch.node, pod["spec"]["nodeName"]);
  EXPECT_EQ(launch.ip, pod["status"]["podIP"]);
  EXPECT_EQ(launch.port, 15001);
  EXPECT_EQ(launch.termination_grace, std::chrono::seconds(7));
  EXPECT_EQ(launch.pod["metadata"]["uid"], pod["metadata"]["uid"]);

  auto listed = store_.List("pods", "default", LabelSelector{});
  auto watcher = store_.Watch("pods", "default", LabelSelector{}, listed.resource_version);
  ASSERT_TRUE(watcher.ok());
  ASSERT_TRUE(MutateObject(store_, "deployments", "default", "proxy", [](json& d) {
                d["spec"]["replicas"] = 0;
                return true;
              }).ok());
  json marked;
  bool deleted = false;
  auto deadline = std::chrono::steady_clock::now() + kTimeout;
  while (!deleted && std::chrono::steady_clock::now() < deadline) {
    auto event = (*watcher)->Next(std::chrono::milliseconds(500));
    if (!event || event->object["metadata"]["name"] != name) continue;
    if (event->type == "DELETED") deleted = true;
    if (event->type == "MODIFIED" && event->object["metadata"].contains("deletionTimestamp")) {
      marked = event->object;
    }
  }
  ASSERT_TRUE(deleted) << "the pod waited for the sandbox's grace period";
  EXPECT_EQ(marked["metadata"]["deletionGracePeriodSeconds"], 7);
  // Every call went to the runtime that started the pod; SIGTERM before the stop, whose
  // deadline is the pod's grace.
  EXPECT_THAT(podlb.calls(),
              ::testing::ElementsAre("start " + name, "probe " + name, "terminate " + name,
                                     "stop " + name + " 7000ms"));
  std::set<std::string> reasons;
  for (const auto& e : EventsAbout(name)) reasons.insert(e["reason"].get<std::string>());
  EXPECT_EQ(reasons, (std::set<std::string>{"Scheduled", "Started", "Killing"}));
}

}  // namespace
}  // namespace podlb::sandbox
