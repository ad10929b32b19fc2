// PodFaultFollower: a Pod object's fault annotations become the backend's fault; a bad value (a
// real API server stores any string) is logged with its key, value and what would be accepted,
// once, and the last good fault stays; a Pod that vanished keeps the fault. The end-to-end run
// through the Kubernetes API is tests/e2e/test_server_faults_test.
#include "sandbox/pods/pod_fault_follower.h"

#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace podlb::sandbox {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;
using json = nlohmann::json;

json Pod(const json& annotations) {
  json meta = {{"name", "web-1"}, {"namespace", "shop"}};
  if (!annotations.is_null()) meta["annotations"] = annotations;
  return {{"apiVersion", "v1"}, {"kind", "Pod"}, {"metadata", meta}};
}

class PodFaultFollowerTest : public ::testing::Test {
 protected:
  PodFault Delay(int ms) {
    PodFault fault;
    fault.delay = absl::Milliseconds(ms);
    return fault;
  }
  void Feed(const json& pod) { follower_.OnPod(&pod); }

  std::vector<PodFault> applied_;
  PodFaultFollower follower_{"shop/web-1", PodFault{},
                             [this](const PodFault& fault) { applied_.push_back(fault); }};
};

TEST_F(PodFaultFollowerTest, AppliesEachChangeOfTheAnnotationsOnce) {
  Feed(Pod(nullptr));
  Feed(Pod({{kFaultDelayAnnotation, "25ms"}, {"other", "x"}}));
  Feed(Pod({{kFaultDelayAnnotation, "25ms"}, {"other", "y"}}));  // not a fault change
  PodFault failing;
  failing.error_rate = 1;
  failing.error_code = absl::StatusCode::kResourceExhausted;
  Feed(Pod({{kFaultErrorRateAnnotation, "1"}, {kFaultErrorCodeAnnotation, "RESOURCE_EXHAUSTED"}}));
  Feed(Pod(json::object()));
  EXPECT_THAT(applied_, ElementsAre(PodFault{}, Delay(25), failing, PodFault{}));
  EXPECT_EQ(follower_.fault(), PodFault{});
}

TEST_F(PodFaultFollowerTest, ABadValueIsLoggedOnceWithKeyAndValueAndTheLastGoodFaultStays) {
  Feed(Pod({{kFaultDelayAnnotation, "25ms"}}));
  ::testing::internal::CaptureStderr();
  // A space in the duration and a share over 1: what kubectl annotate stores on a real cluster.
  Feed(Pod({{kFaultDelayAnnotation, "25 ms"}, {kFaultErrorRateAnnotation, "1.5"}}));
  Feed(Pod({{kFaultDelayAnnotation, "25 ms"}, {kFaultErrorRateAnnotation, "1.5"}}));
  Feed(Pod({{kFaultStuckAnnotation, 42}}));  // not a string: as if absent (no fault)
  std::string log = ::testing::internal::GetCapturedStderr();
  EXPECT_THAT(applied_, ElementsAre(Delay(25), PodFault{}));

  // One line for the two identical bad states, naming both keys, values and what is accepted,
  // and the fault kept; then one line when the annotations are good again.
  EXPECT_THAT(log, HasSubstr("pod shop/web-1: ignoring its fault annotations: "
                             "podlb.io/fault-delay: invalid value \"25 ms\": must be a duration"));
  EXPECT_THAT(log, HasSubstr("podlb.io/fault-error-rate: invalid value \"1.5\": must be a number "
                             "from 0 to 1"));
  EXPECT_THAT(log, HasSubstr("; keeping fault delay=25ms"));
  EXPECT_EQ(log.find("ignoring"), log.rfind("ignoring")) << log;
  EXPECT_THAT(log, HasSubstr("pod shop/web-1: fault annotations valid again"));
}

TEST_F(PodFaultFollowerTest, AVanishedPodKeepsItsFault) {
  Feed(Pod({{kFaultStuckAnnotation, "true"}}));
  ::testing::internal::CaptureStderr();
  follower_.OnPod(nullptr);
  follower_.OnPod(nullptr);
  std::string log = ::testing::internal::GetCapturedStderr();
  ASSERT_EQ(applied_.size(), 1u);
  EXPECT_TRUE(applied_[0].stuck);
  EXPECT_TRUE(follower_.fault().stuck);
  EXPECT_THAT(log, HasSubstr("pod shop/web-1: not found; keeping fault stuck until it exists"));
  EXPECT_EQ(log.find("not found"), log.rfind("not found")) << log;
  EXPECT_THAT(log, Not(HasSubstr("ignoring")));
}

TEST_F(PodFaultFollowerTest, MalformedObjectsAreNoFault) {
  // metadata or annotations of the wrong type: nothing to read, so no fault (never a crash).
  Feed(json{{"metadata", "x"}});
  Feed(json{{"metadata", {{"annotations", json::array()}}}});
  Feed(json::array());
  EXPECT_THAT(applied_, ElementsAre(PodFault{}));
}

}  // namespace
}  // namespace podlb::sandbox
