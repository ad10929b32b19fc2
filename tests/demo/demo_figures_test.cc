// The figures the demo reports, computed from hand-made runs: what "max/min share", "new pod
// seconds" and the rates mean, including the edge cases (a pod with no call, no new pods).
#include <gtest/gtest.h>

#include <sstream>

#include "demo/html_chart.h"
#include "demo/report.h"
#include "demo/run_data.h"

namespace podlb::demo {
namespace {

CallRecord Ok(double t, const std::string& pod, double ms = 1, int client = 0) {
  return {.client = client, .sent_s = t, .latency_ms = ms, .ok = true, .pod = pod};
}

ScenarioRun SteadyRun() {
  ScenarioRun run{.strategy = "dns", .scenario = "steady", .duration_s = 2};
  for (const char* pod : {"a", "b", "c"}) run.pods[pod].ready_at_s = -1;
  run.final_ready = {"a", "b", "c"};
  for (int i = 0; i < 30; ++i) run.calls.push_back(Ok(i * 0.05, i % 3 == 0 ? "a" : "b"));
  for (int i = 0; i < 10; ++i) run.calls.push_back(Ok(i * 0.1, "c", 3));
  return run;
}

TEST(FiguresTest, MaxMinShareIsBusiestOverIdlestReadyPod) {
  Figures f = ComputeFigures(SteadyRun());
  EXPECT_EQ(f.calls, 40u);
  EXPECT_EQ(f.per_pod.at("a"), 10u);
  EXPECT_EQ(f.per_pod.at("b"), 20u);
  EXPECT_EQ(f.per_pod.at("c"), 10u);
  ASSERT_TRUE(f.max_min_share.has_value());
  EXPECT_DOUBLE_EQ(*f.max_min_share, 2.0);
  EXPECT_FALSE(f.has_new_pods);
  EXPECT_FALSE(f.new_pod_seconds.has_value());
  EXPECT_EQ(f.failed_calls, 0u);
  EXPECT_DOUBLE_EQ(f.p50_ms, 1);
  EXPECT_DOUBLE_EQ(f.p99_ms, 3);
}

TEST(FiguresTest, AReadyPodWithoutCallsMakesTheShareInfinite) {
  ScenarioRun run = SteadyRun();
  run.pods["d"].ready_at_s = -1;
  run.final_ready.push_back("d");
  Figures f = ComputeFigures(run);
  EXPECT_FALSE(f.max_min_share.has_value());
  EXPECT_EQ(f.per_pod.at("d"), 0u) << "a pod that never answered is listed with 0";
}

TEST(FiguresTest, ShareCountsOnlyCallsAfterTheLastChange) {
  ScenarioRun run = SteadyRun();
  run.settled_at_s = 1.5;  // only calls sent at or after 1.5 s count
  run.calls.push_back(Ok(1.2, "c"));
  run.calls.push_back(Ok(1.5, "a"));
  run.calls.push_back(Ok(1.6, "b"));
  run.calls.push_back(Ok(1.7, "c"));
  EXPECT_DOUBLE_EQ(*ComputeFigures(run).max_min_share, 1.0);
}

TEST(FiguresTest, NewPodSecondsIsTheSlowestNewPodAndNullWhenOneNeverAnswers) {
  ScenarioRun run = SteadyRun();
  run.pods["d"].ready_at_s = 0.5;
  run.pods["e"].ready_at_s = 0.6;
  run.calls.push_back(Ok(0.7, "d", 100));  // answered at 0.8: 0.3 s after ready
  run.calls.push_back(Ok(1.0, "e", 100));  // answered at 1.1: 0.5 s after ready
  Figures f = ComputeFigures(run);
  EXPECT_TRUE(f.has_new_pods);
  ASSERT_TRUE(f.new_pod_seconds.has_value());
  EXPECT_NEAR(*f.new_pod_seconds, 0.5, 1e-9);

  run.pods["f"].ready_at_s = 0.7;
  f = ComputeFigures(run);
  EXPECT_TRUE(f.has_new_pods);
  EXPECT_FALSE(f.new_pod_seconds.has_value()) << "pod f never answered";
}

TEST(FiguresTest, FailedCallsAreCountedByMessageAndLeftOutOfLatency) {
  ScenarioRun run = SteadyRun();
  run.calls.push_back({.sent_s = 1, .latency_ms = 1000, .ok = false, .error = "deadline"});
  run.calls.push_back({.sent_s = 1, .latency_ms = 1000, .ok = false, .error = "deadline"});
  Figures f = ComputeFigures(run);
  EXPECT_EQ(f.failed_calls, 2u);
  EXPECT_EQ(f.errors.at("deadline"), 2u);
  run.calls.push_back({.ok = false, .error = "last error: ipv4:127.0.3.3:50051: refused"});
  run.calls.push_back({.ok = false, .error = "last error: ipv4:127.0.3.4:50051: refused"});
  EXPECT_EQ(ComputeFigures(run).errors.at("last error: ipv4:POD_IP:PORT: refused"), 2u);
  EXPECT_DOUBLE_EQ(f.p99_ms, 3);
}

TEST(FiguresTest, RatesAreCallsPerSecondPerBucketWithAFlatLineForIdlePods) {
  ScenarioRun run = SteadyRun();
  run.pods["idle"].ready_at_s = 0.5;
  RateSeries rates = ComputeRates(run, 0.5);
  ASSERT_EQ(rates.per_pod.at("c").size(), 4u);
  EXPECT_DOUBLE_EQ(rates.per_pod.at("c")[0], 10.0);  // 5 calls in [0, 0.5) → 10/s
  EXPECT_EQ(rates.per_pod.at("idle"), std::vector<double>(4, 0.0));
}

TEST(ReportTest, JsonHasTheShapeOfTheIssue) {
  DemoResult result;
  result.runs.push_back(SteadyRun());
  ScenarioRun failed{.strategy = "xds", .scenario = "steady", .error = "no control plane"};
  result.runs.push_back(failed);
  nlohmann::json json = ToJson(result);
  ASSERT_EQ(json["scenarios"].size(), 1u);
  const auto& scenario = json["scenarios"][0];
  EXPECT_EQ(scenario["name"], "steady");
  const auto& dns = scenario["strategies"][0];
  EXPECT_EQ(dns["name"], "dns");
  EXPECT_EQ(dns["calls"], 40);
  EXPECT_EQ(dns["per_pod"]["b"], 20);
  EXPECT_DOUBLE_EQ(dns["max_min_share"].get<double>(), 2.0);
  EXPECT_TRUE(dns["new_pod_seconds"].is_null());
  EXPECT_EQ(dns["failed_calls"], 0);
  EXPECT_TRUE(dns["p50_ms"].is_number());
  EXPECT_TRUE(dns["p99_ms"].is_number());
  EXPECT_EQ(scenario["strategies"][1]["error"], "no control plane");
}

// A strategy whose set-up failed must say so in the table and the JSON, with the cause, and not
// pass for a run that measured zeros (as the dns row of a flaky run once did).
TEST(ReportTest, ASetUpFailureIsNamedInTheTableAndTheJson) {
  DemoResult result;
  result.runs.push_back(SteadyRun());
  ScenarioRun failed{.strategy = "dns",
                     .scenario = "steady",
                     .error = "dns: dnsmasq on 127.0.101.1:5353 exited with status 2 at start",
                     .setup_failed = true};
  result.runs.push_back(failed);
  std::ostringstream table;
  PrintTables(result, table);
  EXPECT_NE(table.str().find("dns         SET-UP FAILED, nothing measured: dns: dnsmasq on "
                             "127.0.101.1:5353 exited with status 2 at start"),
            std::string::npos)
      << table.str();
  nlohmann::json json = ToJson(result);
  const auto& entry = json["scenarios"][0]["strategies"][1];
  EXPECT_EQ(entry["setup_error"], failed.error);
  EXPECT_EQ(entry["error"], failed.error);
  EXPECT_FALSE(json["scenarios"][0]["strategies"][0].contains("setup_error"));
}

TEST(ReportTest, ChartHasOneSeriesPerPodAndMarksEvents) {
  ScenarioRun run = SteadyRun();
  run.events.push_back({0.5, "scale 3 → 6"});
  std::string svg = RenderRateChart(run);
  EXPECT_NE(svg.find("<svg class=\"rate-chart\""), std::string::npos);
  size_t series = 0;
  for (size_t at = 0; (at = svg.find("class=\"series\"", at)) != std::string::npos; ++at) ++series;
  EXPECT_EQ(series, 3u);
  EXPECT_NE(svg.find("class=\"event\""), std::string::npos);
  EXPECT_NE(svg.find("scale 3 → 6"), std::string::npos);
}

}  // namespace
}  // namespace podlb::demo
