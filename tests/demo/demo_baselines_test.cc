// End to end: a short `podlb demo` of the baselines on the real sandbox shows the problem podlb
// solves, and its HTML report renders its charts in a real browser (Debian's chromium).
#include <gtest/gtest.h>


#include "demo_json.h"
#include "support/process.h"

namespace podlb::demo {
namespace {

constexpr int kClients = 4;

int CountOf(const std::string& text, const std::string& needle) {
  int n = 0;
  for (size_t at = 0; (at = text.find(needle, at)) != std::string::npos; at += needle.size()) ++n;
  return n;
}

// Pods that answered nothing.
int IdlePods(const nlohmann::json& entry) {
  int idle = 0;
  for (const auto& [pod, calls] : entry["per_pod"].items()) idle += calls.get<int>() == 0;
  return idle;
}

class DemoBaselinesTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new testing::TempDir();
    report_ = dir_->path() + "/report.html";
    demo_ = new DemoJson;
    ok_ = RunDemoJson({"--duration", "3", "--clients", std::to_string(kClients), "--strategies",
                       "clusterip,dns", "--scenarios", "steady,scale-up", "--report", report_},
                      demo_);
  }
  static void TearDownTestSuite() {
    delete demo_;
    delete dir_;
  }
  void SetUp() override { ASSERT_TRUE(ok_); }

  static inline testing::TempDir* dir_ = nullptr;
  static inline std::string report_;
  static inline DemoJson* demo_ = nullptr;
  static inline ::testing::AssertionResult ok_ = ::testing::AssertionFailure();
};

TEST_F(DemoBaselinesTest, ClusterIpPinsEachClientToOnePod) {
  auto entry = demo_->Get("steady", "clusterip");
  ASSERT_FALSE(entry.is_null()) << demo_->output;
  int calls = entry["calls"];
  ASSERT_GT(calls, 0);
  ASSERT_EQ(calls % kClients, 0) << "every client sends the same number of calls";
  EXPECT_EQ(entry["failed_calls"], 0);
  // Each client sends calls/kClients calls. If each client's connection goes to exactly one pod,
  // every pod's count is a whole number of clients' worth; per-call balancing would not be.
  int per_client = calls / kClients;
  for (const auto& [pod, n] : entry["per_pod"].items()) {
    EXPECT_EQ(n.get<int>() % per_client, 0) << pod << " got " << n << " calls:\n" << entry.dump();
  }
}

TEST_F(DemoBaselinesTest, ClusterIpNeverSendsToScaledUpPods) {
  auto entry = demo_->Get("scale-up", "clusterip");
  ASSERT_FALSE(entry.is_null()) << demo_->output;
  EXPECT_TRUE(entry["new_pod_seconds"].is_null()) << entry.dump();
  EXPECT_EQ(entry["per_pod"].size(), 6u) << entry.dump();
  EXPECT_GE(IdlePods(entry), 3) << "the three new pods got nothing: " << entry.dump();
  EXPECT_TRUE(entry["max_min_share"].is_null()) << entry.dump();
}

TEST_F(DemoBaselinesTest, DnsNeverReachesScaledUpPods) {
  auto entry = demo_->Get("scale-up", "dns");
  ASSERT_FALSE(entry.is_null()) << demo_->output;
  EXPECT_TRUE(entry["new_pod_seconds"].is_null()) << entry.dump();
  EXPECT_EQ(entry["per_pod"].size(), 6u) << entry.dump();
  EXPECT_EQ(IdlePods(entry), 3) << entry.dump();
  EXPECT_EQ(entry["failed_calls"], 0) << entry.dump();
}

TEST_F(DemoBaselinesTest, DnsSpreadsEvenlyWhileNothingChanges) {
  // The baseline is configured fairly (round_robin): the problem is change, not the steady state.
  auto entry = demo_->Get("steady", "dns");
  ASSERT_FALSE(entry.is_null()) << demo_->output;
  ASSERT_FALSE(entry["max_min_share"].is_null()) << entry.dump();
  EXPECT_LE(entry["max_min_share"].get<double>(), 1.2) << entry.dump();
}

TEST_F(DemoBaselinesTest, ReportRendersItsChartsInChromium) {
  std::string dom;
  testing::TempDir profile;
  int code = testing::RunCommand(
      {"chromium", "--headless", "--no-sandbox", "--disable-gpu",
       "--disable-background-networking", "--disable-component-update", "--disable-sync",
       "--no-first-run", "--user-data-dir=" + profile.path(), "--dump-dom", "file://" + report_},
      &dom, std::chrono::seconds(60));
  ASSERT_EQ(code, 0) << "chromium failed (scripts/bootstrap.sh installs it):\n" << dom;
  // One chart per run, each with a line per pod that carries data points. (Plain string search:
  // libstdc++'s recursive std::regex overflows the stack on long attribute values.)
  EXPECT_EQ(CountOf(dom, "class=\"rate-chart\""), 4) << dom.substr(0, 2000);
  int lines = 0;
  for (size_t at = 0; (at = dom.find("<polyline class=\"series\"", at)) != std::string::npos;
       ++at) {
    ++lines;
    std::string element = dom.substr(at, dom.find('>', at) - at);
    EXPECT_NE(element.find("data-pod=\"greeter-"), std::string::npos) << element;
    size_t points = element.find("points=\"");
    ASSERT_NE(points, std::string::npos) << element;
    EXPECT_GT(CountOf(element.substr(points), ","), 5) << element;
  }
  EXPECT_EQ(lines, 3 + 3 + 6 + 6) << "a line per pod in each chart";
  EXPECT_NE(dom.find("class=\"event\""), std::string::npos) << "the scale event is marked";
}

}  // namespace
}  // namespace podlb::demo
