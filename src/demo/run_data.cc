#include "demo/run_data.h"

#include <algorithm>
#include <cmath>
#include <regex>
#include <set>

namespace podlb::demo {

const char kFigureDefinitions[] =
    "calls: calls the clients sent. per_pod: calls each pod answered over the whole run. "
    "max_min_share: take the calls sent after the set of ready pods last changed (the whole run "
    "in steady), count them for each pod that is ready at the end; the largest count divided by "
    "the smallest (1.0 is perfectly even; null when one of those pods got no call). "
    "new_pod_seconds: for each pod that turned ready during the run, the time from its readiness "
    "(as the EndpointSlice showed it) to the first call it answered; the worst pod; null when a "
    "new pod never answered a call, or when the scenario adds no pod (steady, scale-down). "
    "failed_calls: calls that ended with a non-OK status (deadline 1 s unless --deadline-ms). "
    "p50_ms/p99_ms: latency of the successful calls.";

namespace {

double Percentile(std::vector<double>& values, double p) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  size_t index = static_cast<size_t>(std::ceil(p * static_cast<double>(values.size()))) - 1;
  return values[std::min(index, values.size() - 1)];
}

// Groups failures by what went wrong, not by which pod address it went wrong with.
std::string ErrorKind(const std::string& message) {
  static const std::regex kAddress(R"(\d+\.\d+\.\d+\.\d+:\d+)");
  return std::regex_replace(message.substr(0, 200), kAddress, "POD_IP:PORT").substr(0, 100);
}

}  // namespace

Figures ComputeFigures(const ScenarioRun& run) {
  Figures f;
  f.calls = run.calls.size();
  std::vector<double> latencies;
  std::map<std::string, uint64_t> settled;
  std::map<std::string, double> first_answer;  // pod → completion time of its first answer
  // Every pod that was ready at some point is listed, with 0 if it answered nothing.
  for (const auto& [pod, life] : run.pods) f.per_pod[pod] = 0;
  for (const auto& call : run.calls) {
    if (!call.ok) {
      ++f.failed_calls;
      ++f.errors[ErrorKind(call.error)];
      continue;
    }
    ++f.per_pod[call.pod];
    latencies.push_back(call.latency_ms);
    if (call.sent_s >= run.settled_at_s) ++settled[call.pod];
    double done = call.sent_s + call.latency_ms / 1000.0;
    auto [it, inserted] = first_answer.emplace(call.pod, done);
    if (!inserted) it->second = std::min(it->second, done);
  }
  f.p50_ms = Percentile(latencies, 0.50);
  f.p99_ms = Percentile(latencies, 0.99);

  if (!run.final_ready.empty()) {
    uint64_t lo = UINT64_MAX, hi = 0;
    for (const auto& pod : run.final_ready) {
      uint64_t n = settled.count(pod) ? settled.at(pod) : 0;
      lo = std::min(lo, n);
      hi = std::max(hi, n);
    }
    if (lo > 0) f.max_min_share = static_cast<double>(hi) / static_cast<double>(lo);
  }

  double worst = 0;
  bool never = false;
  for (const auto& [pod, life] : run.pods) {
    if (!life.ready_at_s || *life.ready_at_s <= 0) continue;
    f.has_new_pods = true;
    auto it = first_answer.find(pod);
    if (it == first_answer.end()) {
      never = true;
      continue;
    }
    worst = std::max(worst, std::max(0.0, it->second - *life.ready_at_s));
  }
  if (f.has_new_pods && !never) f.new_pod_seconds = worst;

  if (run.fault_at_s && !run.bad_pod.empty()) {
    const double from = *run.fault_at_s + kFaultSettleSeconds;
    uint64_t window = 0, ok = 0, on_bad = 0;
    std::vector<double> window_latencies;
    double last_to_bad = *run.fault_at_s;
    for (const auto& call : run.calls) {
      if (call.sent_s < *run.fault_at_s) continue;
      const bool to_bad = !call.ok || call.pod == run.bad_pod;
      if (!call.ok) ++f.failed_after_fault;
      if (to_bad) last_to_bad = std::max(last_to_bad, call.sent_s);
      if (call.sent_s < from) continue;
      ++window;
      ok += call.ok;
      on_bad += to_bad;
      if (call.ok) window_latencies.push_back(call.latency_ms);
    }
    if (window > 0) {
      f.bad_pod_share = static_cast<double>(on_bad) / static_cast<double>(window);
      f.success_rate = static_cast<double>(ok) / static_cast<double>(window);
      f.fault_p50_ms = Percentile(window_latencies, 0.50);
      f.fault_p99_ms = Percentile(window_latencies, 0.99);
    }
    // Still sending to it in the last second of the run: it was never shed.
    if (last_to_bad < run.duration_s - 1) f.bad_pod_shed_s = last_to_bad - *run.fault_at_s;
  }
  return f;
}

RateSeries ComputeRates(const ScenarioRun& run, double bucket_s) {
  RateSeries series;
  series.bucket_s = bucket_s;
  size_t buckets = static_cast<size_t>(std::ceil(run.duration_s / bucket_s));
  if (buckets == 0) buckets = 1;
  // Every pod that lived during the run gets a line, even one that never took a call: the
  // flat zero line is the point of the chart.
  for (const auto& [pod, life] : run.pods) series.per_pod[pod].assign(buckets, 0);
  for (const auto& call : run.calls) {
    if (!call.ok) continue;
    auto& line = series.per_pod[call.pod];
    if (line.empty()) line.assign(buckets, 0);
    size_t b = std::min(buckets - 1, static_cast<size_t>(std::max(0.0, call.sent_s) / bucket_s));
    line[b] += 1.0 / bucket_s;
  }
  return series;
}

}  // namespace podlb::demo
