// DaemonSetController against the ResourceStore with pods that are only objects
// (NullPodRuntime): one pod per node, nodeSelector, the status kubectl reads, a rollout restart
// that replaces pods node by node with never more than maxUnavailable nodes down and never two
// pods on a node, and deletion.
#include <map>
#include <regex>
#include <set>

#include "gtest/gtest.h"
#include "sandbox/controller_test_support.h"
#include "sandbox/controllers/daemonset_controller.h"
#include "sandbox/seed_objects.h"

namespace podlb::sandbox {
namespace {

using json = nlohmann::json;
using testing::Objects;
using testing::WaitForObjects;
constexpr auto kTimeout = std::chrono::seconds(20);

json ProxyDaemonSet(const json& max_unavailable = 1, const json& node_selector = nullptr) {
  json labels = {{"app", "proxy"}};
  json pod_spec = {
      {"containers", json::array({{{"name", "proxy"},
                                   {"image", kBackendPodImage},
                                   {"ports", json::array({{{"containerPort", 7100}}})}}})}};
  if (!node_selector.is_null()) pod_spec["nodeSelector"] = node_selector;
  return {{"apiVersion", "apps/v1"},
          {"kind", "DaemonSet"},
          {"metadata", {{"name", "proxy"}, {"namespace", "default"}}},
          {"spec",
           {{"selector", {{"matchLabels", labels}}},
            {"updateStrategy",
             {{"type", "RollingUpdate"}, {"rollingUpdate", {{"maxUnavailable", max_unavailable}}}}},
            {"template", {{"metadata", {{"labels", labels}}}, {"spec", pod_spec}}}}}};
}

bool PodReady(const json& pod) {
  if (pod["metadata"].contains("deletionTimestamp")) return false;
  for (const auto& c : pod["status"].value("conditions", json::array())) {
    if (c.value("type", "") == "Ready") return c.value("status", "") == "True";
  }
  return false;
}

std::string NodeOf(const json& pod) { return pod["spec"].value("nodeName", ""); }

class DaemonSetControllerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    DaemonSetControllerOptions options;
    options.grace_period = std::chrono::milliseconds(50);
    options.readiness_delay = std::chrono::milliseconds(20);
    controller_ = std::make_unique<DaemonSetController>(store_, runtime_, ips_, options);
    ASSERT_TRUE(controller_->Start().ok());
  }
  void TearDown() override { controller_->Stop(); }

  [[nodiscard]] ::testing::AssertionResult WaitPods(const std::function<bool(const Objects&)>& done,
                                                    const std::string& what) {
    return WaitForObjects(store_, "pods", "default", done, kTimeout, what);
  }
  // One ready pod on each of `nodes` and no other pod.
  static std::function<bool(const Objects&)> ReadyOn(std::set<std::string> nodes) {
    return [nodes](const Objects& pods) {
      std::set<std::string> ready;
      for (const auto& pod : pods) {
        if (!PodReady(pod)) return false;
        ready.insert(NodeOf(pod));
      }
      return pods.size() == nodes.size() && ready == nodes;
    };
  }
  json Status() { return (*store_.Get("daemonsets", "default", "proxy"))["status"]; }
  [[nodiscard]] ::testing::AssertionResult WaitStatus(const std::string& field, int value) {
    return WaitForObjects(
        store_, "daemonsets", "default",
        [&](const Objects& d) {
          return d.size() == 1 && d[0].value("status", json::object()).value(field, -1) == value;
        },
        kTimeout, field + " " + std::to_string(value));
  }

  ResourceStore store_;
  NullPodRuntime runtime_;
  PodIpAllocator ips_{"127.0.5.2"};
  std::unique_ptr<DaemonSetController> controller_;
};

TEST_F(DaemonSetControllerTest, RunsOnePodOnEveryNodeAndReportsStatus) {
  ASSERT_TRUE(store_.Create("daemonsets", "default", ProxyDaemonSet()).ok());
  ASSERT_TRUE(WaitPods(ReadyOn({"node-a", "node-b", "node-c"}), "one ready pod per node"));
  std::string uid = (*store_.Get("daemonsets", "default", "proxy"))["metadata"]["uid"];
  std::set<std::string> ips;
  for (const auto& pod : store_.List("pods", "default", LabelSelector{}).items) {
    std::string name = pod["metadata"]["name"];
    EXPECT_TRUE(std::regex_match(name, std::regex("proxy-[a-z0-9]{5}"))) << name;
    const json& owner = pod["metadata"]["ownerReferences"][0];
    EXPECT_EQ(owner["kind"], "DaemonSet");
    EXPECT_EQ(owner["name"], "proxy");
    EXPECT_EQ(owner["uid"], uid);
    EXPECT_EQ(pod["metadata"]["labels"]["app"], "proxy");
    EXPECT_EQ(pod["metadata"]["labels"]["controller-revision-hash"].get<std::string>().size(), 10u);
    EXPECT_EQ(pod["status"]["phase"], "Running");
    ips.insert(pod["status"]["podIP"].get<std::string>());
  }
  EXPECT_EQ(ips.size(), 3u);
  ASSERT_TRUE(WaitStatus("numberAvailable", 3));
  EXPECT_EQ(Status(), json({{"desiredNumberScheduled", 3},
                            {"currentNumberScheduled", 3},
                            {"numberMisscheduled", 0},
                            {"numberReady", 3},
                            {"numberAvailable", 3},
                            {"numberUnavailable", 0},
                            {"updatedNumberScheduled", 3},
                            {"observedGeneration", 1}}));
}

TEST_F(DaemonSetControllerTest, NodeSelectorPicksNodesAndMovesPodsWhenItChanges) {
  ASSERT_TRUE(store_
                  .Create("daemonsets", "default",
                          ProxyDaemonSet(1, {{"topology.kubernetes.io/zone", "zone-b"}}))
                  .ok());
  ASSERT_TRUE(WaitPods(ReadyOn({"node-b"}), "one pod, on node-b"));
  ASSERT_TRUE(WaitStatus("numberAvailable", 1));
  EXPECT_EQ(Status()["desiredNumberScheduled"], 1);

  ASSERT_TRUE(
      MutateObject(store_, "daemonsets", "default", "proxy", [](json& d) {
        d["spec"]["template"]["spec"]["nodeSelector"] = {{"kubernetes.io/hostname", "node-c"}};
        return true;
      }).ok());
  ASSERT_TRUE(WaitPods(ReadyOn({"node-c"}), "the pod moved to node-c"));
  ASSERT_TRUE(WaitStatus("observedGeneration", 2));

  // A selector no node matches: no pods, nothing desired.
  ASSERT_TRUE(MutateObject(store_, "daemonsets", "default", "proxy", [](json& d) {
                d["spec"]["template"]["spec"]["nodeSelector"] = {{"disktype", "ssd"}};
                return true;
              }).ok());
  ASSERT_TRUE(WaitPods([](const Objects& pods) { return pods.empty(); }, "no pods"));
  ASSERT_TRUE(WaitStatus("desiredNumberScheduled", 0));
}

TEST_F(DaemonSetControllerTest, DeletedPodIsReplacedOnItsNode) {
  ASSERT_TRUE(store_.Create("daemonsets", "default", ProxyDaemonSet()).ok());
  ASSERT_TRUE(WaitPods(ReadyOn({"node-a", "node-b", "node-c"}), "one ready pod per node"));
  std::string victim, victim_node;
  for (const auto& pod : store_.List("pods", "default", LabelSelector{}).items) {
    victim = pod["metadata"]["name"];
    victim_node = NodeOf(pod);
  }
  ASSERT_TRUE(store_.Delete("pods", "default", victim).ok());  // `kubectl delete pod`
  ASSERT_TRUE(WaitPods(
      [&](const Objects& pods) {
        if (!ReadyOn({"node-a", "node-b", "node-c"})(pods)) return false;
        for (const auto& pod : pods) {
          if (pod["metadata"]["name"] == victim) return false;
        }
        return true;
      },
      "a replacement on " + victim_node));
}

// Follows every pod event of a rollout restart: at no point are more than `max_down` nodes
// without a ready pod, and no node ever has two pods (maxSurge 0).
void ExpectNodeByNodeRollout(ResourceStore& store, int max_down) {
  auto listed = store.List("pods", "default", LabelSelector{});
  std::map<std::string, json> pods;
  std::set<std::string> old_pods;
  for (auto& p : listed.items) {
    old_pods.insert(p["metadata"]["name"]);
    pods[p["metadata"]["name"]] = p;
  }
  ASSERT_EQ(old_pods.size(), 3u);
  auto watcher = store.Watch("pods", "default", LabelSelector{}, listed.resource_version);
  ASSERT_TRUE(watcher.ok());
  // What `kubectl rollout restart daemonset/proxy` patches.
  ASSERT_TRUE(
      MutateObject(store, "daemonsets", "default", "proxy", [](json& d) {
        d["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"] =
            "2024-05-01T10:00:00Z";
        return true;
      }).ok());

  auto deadline = std::chrono::steady_clock::now() + kTimeout;
  int most_down = 0, most_pods_on_a_node = 1;
  bool done = false;
  while (!done && std::chrono::steady_clock::now() < deadline) {
    auto event = (*watcher)->Next(std::chrono::milliseconds(500));
    if (!event) continue;
    std::string name = event->object["metadata"]["name"];
    if (event->type == "DELETED") {
      pods.erase(name);
    } else {
      pods[name] = event->object;
    }
    std::map<std::string, int> on_node;
    std::set<std::string> up;
    for (const auto& [n, pod] : pods) {
      ++on_node[NodeOf(pod)];
      if (PodReady(pod)) up.insert(NodeOf(pod));
    }
    for (const auto& [node, count] : on_node)
      most_pods_on_a_node = std::max(most_pods_on_a_node, count);
    most_down = std::max(most_down, 3 - static_cast<int>(up.size()));
    done = pods.size() == 3 && up.size() == 3;
    for (const auto& [n, pod] : pods) done = done && !old_pods.count(n);
  }
  EXPECT_TRUE(done) << "rollout did not finish";
  EXPECT_EQ(most_down, max_down) << "nodes without a ready pod at the worst moment";
  EXPECT_EQ(most_pods_on_a_node, 1);
}

TEST_F(DaemonSetControllerTest, RolloutRestartReplacesPodsOneNodeAtATime) {
  ASSERT_TRUE(store_.Create("daemonsets", "default", ProxyDaemonSet()).ok());
  ASSERT_TRUE(WaitPods(ReadyOn({"node-a", "node-b", "node-c"}), "one ready pod per node"));
  ExpectNodeByNodeRollout(store_, 1);
  ASSERT_TRUE(WaitStatus("observedGeneration", 2));
  ASSERT_TRUE(WaitStatus("numberAvailable", 3));
  EXPECT_EQ(Status()["updatedNumberScheduled"], 3);
}

TEST_F(DaemonSetControllerTest, MaxUnavailablePercentRollsTwoNodesAtATime) {
  // 50% of 3 nodes, rounded up: 2.
  ASSERT_TRUE(store_.Create("daemonsets", "default", ProxyDaemonSet("50%")).ok());
  ASSERT_TRUE(WaitPods(ReadyOn({"node-a", "node-b", "node-c"}), "one ready pod per node"));
  ExpectNodeByNodeRollout(store_, 2);
}

TEST_F(DaemonSetControllerTest, DeletingTheDaemonSetTerminatesItsPods) {
  ASSERT_TRUE(store_.Create("daemonsets", "default", ProxyDaemonSet()).ok());
  ASSERT_TRUE(WaitPods(ReadyOn({"node-a", "node-b", "node-c"}), "one ready pod per node"));
  ASSERT_TRUE(store_.Delete("daemonsets", "default", "proxy").ok());
  ASSERT_TRUE(WaitPods(
      [](const Objects& pods) {
        for (const auto& pod : pods) {
          if (!pod["metadata"].contains("deletionTimestamp")) return false;
        }
        return true;
      },
      "every pod terminating"));
  ASSERT_TRUE(WaitPods([](const Objects& pods) { return pods.empty(); }, "no pods left"));
}

TEST(MaxUnavailableTest, IntPercentDefaultAndBadValues) {
  auto with = [](const json& value) { return ProxyDaemonSet(value); };
  EXPECT_EQ(*MaxUnavailable(with(2), 3), 2);
  EXPECT_EQ(*MaxUnavailable(with(0), 3), 1);  // maxSurge is 0: someone has to go first
  EXPECT_EQ(*MaxUnavailable(with("34%"), 3), 2);
  EXPECT_EQ(*MaxUnavailable(with("100%"), 3), 3);
  EXPECT_EQ(*MaxUnavailable(with("10%"), 3), 1);
  json absent = with(1);
  absent["spec"].erase("updateStrategy");
  EXPECT_EQ(*MaxUnavailable(absent, 3), 1);
  EXPECT_EQ(MaxUnavailable(with("abc"), 3).status().message(),
            "spec.updateStrategy.rollingUpdate.maxUnavailable: \"abc\" must be an integer or a "
            "percentage between 0% and 100%");
  EXPECT_EQ(MaxUnavailable(with("150%"), 3).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(MaxUnavailable(with(-1), 3).status().message(),
            "spec.updateStrategy.rollingUpdate.maxUnavailable: -1 must be greater than or equal "
            "to 0");
}

}  // namespace
}  // namespace podlb::sandbox
