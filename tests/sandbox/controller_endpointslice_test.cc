// EndpointSliceController against the ResourceStore with hand-made Pods: slice contents,
// splitting at max endpoints per slice, in-place updates that leave unchanged slices alone,
// terminating endpoints, the core/v1 Endpoints object, and cleanup.
#include <map>

#include "gtest/gtest.h"
#include "sandbox/controller_test_support.h"
#include "sandbox/controllers/endpointslice_controller.h"

namespace podlb::sandbox {
namespace {

using json = nlohmann::json;
using testing::CountReady;
using testing::EndpointsOf;
using testing::Objects;
using testing::WaitForObjects;
constexpr auto kTimeout = std::chrono::seconds(10);

json Service() {
  return {
      {"metadata", {{"name", "greeter"}, {"namespace", "default"}, {"labels", {{"team", "x"}}}}},
      {"spec",
       {{"selector", {{"app", "greeter"}}},
        {"ports", json::array({{{"name", "grpc"}, {"port", 50051}, {"targetPort", "grpc"}}})}}}};
}

json Pod(int i, bool ready = true, const std::string& app = "greeter") {
  std::string ip = "127.0.9." + std::to_string(i + 2);
  return {
      {"metadata",
       {{"name", "greeter-" + std::to_string(1000 + i)},
        {"namespace", "default"},
        {"labels", {{"app", app}}}}},
      {"spec",
       {{"nodeName", i % 2 ? "node-b" : "node-a"},
        {"containers",
         json::array({{{"name", "c"},
                       {"ports", json::array({{{"name", "grpc"}, {"containerPort", 6000}}})}}})}}},
      {"status",
       {{"phase", "Running"},
        {"podIP", ip},
        {"conditions", json::array({{{"type", "Ready"}, {"status", ready ? "True" : "False"}}})}}}};
}

class EndpointSliceControllerTest : public ::testing::Test {
 protected:
  void StartController(size_t max_per_slice) {
    EndpointSliceControllerOptions options;
    options.max_endpoints_per_slice = max_per_slice;
    controller_ = std::make_unique<EndpointSliceController>(store_, options);
    ASSERT_TRUE(controller_->Start().ok());
  }
  void CreatePods(int from, int to) {
    for (int i = from; i < to; ++i) ASSERT_TRUE(store_.Create("pods", "default", Pod(i)).ok());
  }
  void TearDown() override {
    if (controller_) controller_->Stop();
  }
  [[nodiscard]] ::testing::AssertionResult WaitSlices(
      const std::function<bool(const Objects&)>& done, const std::string& what) {
    return WaitForObjects(store_, "endpointslices", "default", done, kTimeout, what);
  }

  // Waits until the core/v1 Endpoints "greeter" has `ready` addresses and `not_ready` others in
  // its first subset (it is written after the slices, so it may trail them briefly).
  [[nodiscard]] ::testing::AssertionResult WaitEndpoints(size_t ready, size_t not_ready) {
    return WaitForObjects(
        store_, "endpoints", "default",
        [&](const Objects& all) {
          for (const auto& e : all) {
            if (e["metadata"]["name"] != "greeter" || !e.contains("subsets")) continue;
            const json& subset = e["subsets"][0];
            return subset.value("addresses", json::array()).size() == ready &&
                   subset.value("notReadyAddresses", json::array()).size() == not_ready;
          }
          return false;
        },
        kTimeout, "Endpoints greeter");
  }

  ResourceStore store_;
  std::unique_ptr<EndpointSliceController> controller_;
};

TEST_F(EndpointSliceControllerTest, PublishesSelectedPodsInSlicesOfAtMostMax) {
  ASSERT_TRUE(store_.Create("services", "default", Service()).ok());
  CreatePods(0, 5);
  ASSERT_TRUE(store_.Create("pods", "default", Pod(9, true, "other")).ok());  // not selected
  StartController(2);
  ASSERT_TRUE(WaitSlices(testing::ExactlyReady(5), "5 ready endpoints"));
  Objects slices = store_.List("endpointslices", "default", LabelSelector{}).items;
  ASSERT_EQ(slices.size(), 3u);
  for (const auto& slice : slices) {
    EXPECT_LE(slice["endpoints"].size(), 2u);
    EXPECT_EQ(slice["addressType"], "IPv4");
    EXPECT_EQ(slice["metadata"]["labels"]["kubernetes.io/service-name"], "greeter");
    EXPECT_EQ(slice["metadata"]["labels"]["endpointslice.kubernetes.io/managed-by"],
              "endpointslice-controller.k8s.io");
    EXPECT_EQ(slice["metadata"]["labels"]["team"], "x");
    EXPECT_TRUE(slice["metadata"]["name"].get<std::string>().starts_with("greeter-"));
    EXPECT_EQ(slice["metadata"]["ownerReferences"][0]["kind"], "Service");
    // targetPort "grpc" resolved against the pod's named container port.
    EXPECT_EQ(slice["ports"], json::parse(R"([{"name":"grpc","port":6000,"protocol":"TCP"}])"));
    for (const auto& e : slice["endpoints"]) {
      EXPECT_EQ(e["targetRef"]["kind"], "Pod");
      EXPECT_EQ(e["zone"], e["nodeName"] == "node-a" ? "zone-a" : "zone-b");
    }
  }
  // The legacy Endpoints object lists the same five ready addresses.
  ASSERT_TRUE(WaitEndpoints(5, 0));
  auto endpoints = store_.Get("endpoints", "default", "greeter");
  ASSERT_TRUE(endpoints.ok()) << endpoints.status();
  EXPECT_EQ((*endpoints)["subsets"][0]["addresses"].size(), 5u);
  EXPECT_EQ((*endpoints)["subsets"][0]["ports"][0]["port"], 6000);
}

TEST_F(EndpointSliceControllerTest, OneHundredFiftyPodsMakeTwoSlices) {
  ASSERT_TRUE(store_.Create("services", "default", Service()).ok());
  CreatePods(0, 150);
  StartController(100);
  ASSERT_TRUE(WaitSlices(testing::ExactlyReady(150), "150 ready endpoints"));
  Objects slices = store_.List("endpointslices", "default", LabelSelector{}).items;
  ASSERT_EQ(slices.size(), 2u);
  std::multiset<size_t> sizes = {slices[0]["endpoints"].size(), slices[1]["endpoints"].size()};
  EXPECT_EQ(sizes, (std::multiset<size_t>{50, 100}));
}

TEST_F(EndpointSliceControllerTest, ChangeRewritesOnlyTheSliceHoldingThePod) {
  ASSERT_TRUE(store_.Create("services", "default", Service()).ok());
  CreatePods(0, 6);
  StartController(2);
  ASSERT_TRUE(WaitSlices(testing::ExactlyReady(6), "6 ready endpoints"));
  std::map<std::string, std::string> versions;  // slice name -> resourceVersion
  std::string holder;
  for (const auto& s : store_.List("endpointslices", "default", LabelSelector{}).items) {
    versions[s["metadata"]["name"]] = s["metadata"]["resourceVersion"];
    for (const auto& e : s["endpoints"]) {
      if (e["targetRef"]["name"] == "greeter-1003") holder = s["metadata"]["name"];
    }
  }
  ASSERT_FALSE(holder.empty());
  ASSERT_TRUE(store_.Update("pods", "default", Pod(3, /*ready=*/false)).ok());
  ASSERT_TRUE(WaitSlices([](const Objects& s) { return CountReady(s) == 5; }, "5 ready"));
  for (const auto& s : store_.List("endpointslices", "default", LabelSelector{}).items) {
    std::string name = s["metadata"]["name"];
    ASSERT_TRUE(versions.count(name)) << "slice " << name << " was recreated, not updated";
    if (name == holder) {
      EXPECT_NE(s["metadata"]["resourceVersion"], versions[name]);
    } else {
      EXPECT_EQ(s["metadata"]["resourceVersion"], versions[name]) << name << " was rewritten";
    }
  }
  EXPECT_TRUE(WaitEndpoints(5, 1));
}

TEST_F(EndpointSliceControllerTest, TerminatingPodIsServingButNotReady) {
  ASSERT_TRUE(store_.Create("services", "default", Service()).ok());
  CreatePods(0, 2);
  StartController(100);
  ASSERT_TRUE(WaitSlices(testing::ExactlyReady(2), "2 ready endpoints"));
  json pod = *store_.Get("pods", "default", "greeter-1000");
  pod["metadata"]["deletionTimestamp"] = "2024-01-01T00:00:00Z";
  ASSERT_TRUE(store_.Update("pods", "default", pod).ok());
  ASSERT_TRUE(WaitSlices([](const Objects& s) { return CountReady(s) == 1; }, "1 ready"));
  for (const auto& e :
       EndpointsOf(store_.List("endpointslices", "default", LabelSelector{}).items)) {
    if (e.pod == "greeter-1000") {
      EXPECT_FALSE(e.ready);
      EXPECT_TRUE(e.serving);
      EXPECT_TRUE(e.terminating);
    }
  }
  // The endpoints controller leaves terminating pods out entirely.
  EXPECT_TRUE(WaitEndpoints(1, 0));
}

TEST_F(EndpointSliceControllerTest, ScaleDownShrinksAndEmptyServiceKeepsOnePlaceholder) {
  ASSERT_TRUE(store_.Create("services", "default", Service()).ok());
  CreatePods(0, 5);
  StartController(2);
  ASSERT_TRUE(WaitSlices(testing::ExactlyReady(5), "5 ready endpoints"));
  for (int i = 2; i < 5; ++i) {
    ASSERT_TRUE(store_.Delete("pods", "default", "greeter-" + std::to_string(1000 + i)).ok());
  }
  ASSERT_TRUE(WaitSlices(testing::ExactlyReady(2), "2 ready endpoints"));
  for (int i = 0; i < 2; ++i) {
    ASSERT_TRUE(store_.Delete("pods", "default", "greeter-" + std::to_string(1000 + i)).ok());
  }
  ASSERT_TRUE(WaitSlices([](const Objects& s) { return s.size() == 1 && EndpointsOf(s).empty(); },
                         "one empty placeholder slice"));
  ASSERT_TRUE(store_.Delete("services", "default", "greeter").ok());
  ASSERT_TRUE(WaitSlices([](const Objects& s) { return s.empty(); }, "no slices"));
  ASSERT_TRUE(WaitForObjects(
      store_, "endpoints", "default", [](const Objects& e) { return e.empty(); }, kTimeout,
      "no Endpoints"));
}

}  // namespace
}  // namespace podlb::sandbox
