// End to end: a short `podlb demo` of the podlb strategies on the real sandbox meets the bars of
// their issues: even spread in steady state (xds, round robin: max/min ≤ 1.2; the proxy and the
// library, peak EWMA: every pod takes calls), new pods take calls within 1 s, no failed call
// during a rolling restart.
#include <gtest/gtest.h>

#include "demo_json.h"

namespace podlb::demo {
namespace {

const char* const kStrategies[] = {"xds", "proxy", "library"};

class DemoPodlbTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    // 1,600 steady calls: enough that one call more or less on a pod cannot move the share much
    // (the control plane sends one locality per priority, so gRPC's round robin is exact).
    steady_ = new DemoJson;
    steady_ok_ = RunDemoJson({"--duration", "4", "--rate", "400", "--strategies",
                              "xds,proxy,library", "--scenarios", "steady"},
                             steady_);
    changes_ = new DemoJson;
    changes_ok_ = RunDemoJson({"--duration", "3", "--strategies", "xds,proxy,library",
                               "--scenarios", "scale-up,rolling-restart"},
                              changes_);
  }
  static void TearDownTestSuite() {
    delete steady_;
    delete changes_;
  }
  void SetUp() override {
    ASSERT_TRUE(steady_ok_);
    ASSERT_TRUE(changes_ok_);
  }
  static nlohmann::json Get(const std::string& scenario, const std::string& strategy) {
    return (scenario == "steady" ? steady_ : changes_)->Get(scenario, strategy);
  }
  static std::string Output() { return steady_->output + changes_->output; }

  static inline DemoJson* steady_ = nullptr;
  static inline DemoJson* changes_ = nullptr;
  static inline ::testing::AssertionResult steady_ok_ = ::testing::AssertionFailure();
  static inline ::testing::AssertionResult changes_ok_ = ::testing::AssertionFailure();
};

TEST_F(DemoPodlbTest, SpreadEvenlyInSteadyState) {
  for (const char* strategy : kStrategies) {
    auto entry = Get("steady", strategy);
    ASSERT_FALSE(entry.is_null()) << strategy << "\n" << Output();
    ASSERT_FALSE(entry.contains("error")) << entry.dump();
    // Null: a ready pod got no call at all.
    ASSERT_FALSE(entry["max_min_share"].is_null()) << entry.dump();
    // Round robin is exact whatever the machine does. Peak EWMA follows the pods' measured
    // latency, which on a loaded machine differs by more than its same-latency tolerance (2x)
    // for seconds (1.33 seen under a load of 4); its spread under controlled latencies is
    // asserted in tests/balancing, and the proxy's and the library's round robin exactly in
    // tests/proxy and tests/client.
    if (std::string(strategy) == "xds") {
      EXPECT_LE(entry["max_min_share"].get<double>(), 1.2) << entry.dump();
    }
    EXPECT_EQ(entry["failed_calls"], 0) << entry.dump();
  }
}

TEST_F(DemoPodlbTest, NewPodsTakeCallsWithinOneSecond) {
  for (const char* strategy : kStrategies) {
    auto entry = Get("scale-up", strategy);
    ASSERT_FALSE(entry.is_null()) << strategy << "\n" << Output();
    ASSERT_FALSE(entry["new_pod_seconds"].is_null()) << entry.dump();
    EXPECT_LE(entry["new_pod_seconds"].get<double>(), 1.0) << entry.dump();
    EXPECT_EQ(entry["failed_calls"], 0) << entry.dump();
  }
}

TEST_F(DemoPodlbTest, NoFailedCallInARollingRestart) {
  for (const char* strategy : kStrategies) {
    auto entry = Get("rolling-restart", strategy);
    ASSERT_FALSE(entry.is_null()) << strategy << "\n" << Output();
    EXPECT_EQ(entry["failed_calls"], 0) << entry.dump();
    EXPECT_FALSE(entry["new_pod_seconds"].is_null()) << entry.dump();
  }
}

}  // namespace
}  // namespace podlb::demo
