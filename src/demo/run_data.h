// What one (strategy, scenario) run recorded, and the figures computed from it. Plain values,
// built on the runner thread and read-only afterwards.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace podlb::demo {

// Times are seconds since the workload started.
struct CallRecord {
  int client = 0;
  double sent_s = 0;
  double latency_ms = 0;
  bool ok = false;
  std::string pod;    // empty when the call failed
  std::string error;  // the status message when it failed
};

struct ClusterEvent {
  double at_s = 0;
  std::string label;  // "scale 3 → 6"
};

struct PodLife {
  std::optional<double> ready_at_s;  // first seen ready (negative: before the workload started)
  std::optional<double> gone_at_s;   // last left the ready set, if it did
};

struct ScenarioRun {
  std::string strategy;
  std::string scenario;
  double duration_s = 0;
  std::vector<CallRecord> calls;
  std::vector<ClusterEvent> events;
  std::map<std::string, PodLife> pods;
  // When the set of ready pods last changed (0 if it never did during the run), and that set.
  double settled_at_s = 0;
  std::vector<std::string> final_ready;
  std::string error;  // non-empty: the run could not be done; figures are empty
  std::string policy;  // the balancing policy the strategy ran with ("" for baselines)
  // Fault scenarios: the pod made bad, and when (seconds since the workload started).
  std::string bad_pod;
  std::optional<double> fault_at_s;
  // The error came before the workload started (cluster, strategy or warm-up): nothing was
  // measured, and the report says so instead of showing zeros.
  bool setup_failed = false;
  // The cluster lacks what the strategy needs (cluster DNS, an API server): nothing was measured
  // and nothing failed; `error` says what is missing. Implies setup_failed.
  bool unavailable = false;
};

struct Figures {
  uint64_t calls = 0;
  std::map<std::string, uint64_t> per_pod;  // successful calls per pod, whole run
  // Calls sent after the ready set last changed, per pod ready at the end: largest / smallest.
  // nullopt when one of those pods got no call (infinitely uneven).
  std::optional<double> max_min_share;
  // Seconds from a new pod turning ready to its first answered call, worst new pod. nullopt when
  // a new pod never answered, or when the scenario adds no pod (has_new_pods false).
  std::optional<double> new_pod_seconds;
  bool has_new_pods = false;
  uint64_t failed_calls = 0;
  std::map<std::string, uint64_t> errors;  // failed calls by status message (first 100 chars)
  double p50_ms = 0;
  double p99_ms = 0;
  // Fault scenarios, over the calls sent from 2 s after the fault on (kFaultSettleSeconds): the
  // bad pod's share of them (a failed call counts as the bad pod's: in these scenarios it is the
  // one that fails), the share that succeeded, their latency, and the seconds from the fault
  // to the last call sent to the bad pod (nullopt: it never stopped getting calls).
  std::optional<double> bad_pod_share;
  std::optional<double> success_rate;
  std::optional<double> fault_p50_ms;
  std::optional<double> fault_p99_ms;
  std::optional<double> bad_pod_shed_s;
  uint64_t failed_after_fault = 0;  // failed calls sent after the fault, whole rest of the run
};

inline constexpr double kFaultSettleSeconds = 2.0;

Figures ComputeFigures(const ScenarioRun& run);

// Calls per second per pod over time, in buckets of `bucket_s` (successful calls, by send time).
struct RateSeries {
  double bucket_s = 1;
  std::map<std::string, std::vector<double>> per_pod;  // pod → calls/s per bucket
};
RateSeries ComputeRates(const ScenarioRun& run, double bucket_s);

// The definitions above, as the report and README state them.
extern const char kFigureDefinitions[];

}  // namespace podlb::demo
