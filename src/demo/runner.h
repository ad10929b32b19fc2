// DemoRunner: runs every chosen (scenario, strategy) pair on a fresh cluster, with the same
// workload, and collects what happened. Progress goes to `progress` (stderr in the CLI). Run
// from one thread.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "demo/cluster.h"
#include "demo/run_data.h"
#include "demo/strategy.h"
#include "demo/workload.h"

namespace podlb::demo {

struct Scenario {
  std::string name;  // steady, scale-up, rolling-restart, scale-down, slow-pod, ...
  int initial_replicas = 3;
  std::string event_label;                         // empty: no event
  std::function<absl::Status(DemoCluster&)> event;  // runs at a quarter of the run
  // Fault scenarios: at a quarter of the run the first ready pod (by name) turns bad this way
  // (instead of `event`), and the Service carries kFaultScenarioAnnotations from the start.
  std::optional<PodFaultSpec> fault;
  double min_duration_s = 0;  // runs at least this long whatever WorkloadOptions::duration_s says
  std::optional<std::chrono::milliseconds> deadline;  // per call, instead of the workload's
};

// The Service's annotations in the fault scenarios: outlier detection on for every remedy,
// evaluated every second (gRPC clients eject only at the end of each interval; 10 s would
// outlast the run), ejecting at 30 % failures (gRPC ejects only above the threshold) over at
// least 5 calls per interval.
extern const std::map<std::string, std::string> kFaultScenarioAnnotations;

// The seven scenarios, in report order.
const std::vector<Scenario>& AllScenarios();
const Scenario* FindScenario(const std::string& name);

struct DemoOptions {
  std::vector<std::string> strategies;
  std::vector<std::string> scenarios;
  WorkloadOptions workload;
  StrategyOptions strategy;
  ClusterFactory make_cluster;
  std::ostream* progress = nullptr;  // null: quiet
  bool progress_is_terminal = false;  // redraw one line instead of printing many
};

struct DemoResult {
  std::vector<ScenarioRun> runs;  // scenario-major, strategies in the order asked
  WorkloadOptions workload;
  StrategyOptions strategy;
  std::vector<std::pair<std::string, std::string>> descriptions;  // strategy, one line; run order
};

// Fails only on bad options; a run that cannot be done is recorded with its error.
absl::StatusOr<DemoResult> RunDemo(const DemoOptions& options, const StrategyCatalog& catalog);

}  // namespace podlb::demo
