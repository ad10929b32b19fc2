// DemoRunner: runs every chosen (scenario, strategy) pair on a fresh cluster, with the same
// workload, and collects what happened. Progress goes to `progress` (stderr in the CLI). Run
// from one thread.
#pragma once

#include <functional>
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
  std::string name;  // steady, scale-up, rolling-restart, scale-down
  int initial_replicas = 3;
  std::string event_label;                         // empty: no event
  std::function<absl::Status(DemoCluster&)> event;  // runs at a quarter of the run
};

// The four scenarios, in report order.
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
