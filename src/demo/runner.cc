#include "demo/runner.h"

#include <stdlib.h>

#include <filesystem>
#include <set>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"

namespace podlb::demo {

const std::vector<Scenario>& AllScenarios() {
  static const auto* scenarios = new std::vector<Scenario>{
      {.name = "steady", .initial_replicas = 3},
      {.name = "scale-up",
       .initial_replicas = 3,
       .event_label = "scale 3 → 6",
       .event = [](DemoCluster& c) { return c.Scale(6); }},
      {.name = "rolling-restart",
       .initial_replicas = 3,
       .event_label = "rolling restart",
       .event = [](DemoCluster& c) { return c.RollingRestart(); }},
      {.name = "scale-down",
       .initial_replicas = 6,
       .event_label = "scale 6 → 2",
       .event = [](DemoCluster& c) { return c.Scale(2); }},
      {.name = "slow-pod",
       .event_label = "one pod +25 ms per call",
       .fault = PodFaultSpec{.delay = std::chrono::milliseconds(25)},
       .min_duration_s = 8},
      {.name = "failing-pod",
       .event_label = "one pod answers 50 % UNAVAILABLE",
       .fault = PodFaultSpec{.error_rate = 0.5},
       .min_duration_s = 8},
      {.name = "stuck-pod",
       .event_label = "one pod stops answering (1 s deadline)",
       .fault = PodFaultSpec{.stuck = true},
       .min_duration_s = 8,
       .deadline = std::chrono::milliseconds(1000)},
  };
  return *scenarios;
}

const std::map<std::string, std::string> kFaultScenarioAnnotations = {
    {"podlb.io/outlier-detection", "true"},
    {"podlb.io/outlier-interval", "1s"},
    {"podlb.io/outlier-failure-percentage", "30"},
    // Each demo client has its own channel and so its own outlier detector: at 200 calls/s
    // over 4 clients and 3 pods one pod sees about 16 calls a second from each. gRPC evaluates
    // a pod only with request_volume calls in the interval (its default, 100, and ours, 20,
    // would never be met).
    {"podlb.io/outlier-minimum-requests", "5"},
};

const Scenario* FindScenario(const std::string& name) {
  for (const auto& s : AllScenarios()) {
    if (s.name == name) return &s;
  }
  return nullptr;
}

namespace {

// Watches the cluster's endpoints and remembers, per pod, when it turned ready and when it left
// the ready set, and when the ready set last changed. Callbacks come from the cluster's thread.
class PodObserver {
 public:
  explicit PodObserver(std::chrono::steady_clock::time_point start) : start_(start) {}

  void Attach(DemoCluster& cluster) {
    subscription_ = cluster.registry().Subscribe(
        cluster.service(),
        [this](const ServiceKey&, const EndpointSetConstSharedPtr& set) { OnChange(set); });
  }
  void Detach() { subscription_.reset(); }
  void SetStart(std::chrono::steady_clock::time_point start) {
    absl::MutexLock lock(&mu_);
    // Times seen so far were relative to a provisional start; shift them.
    double shift = std::chrono::duration<double>(start - start_).count();
    for (auto& [pod, life] : pods_) {
      if (life.ready_at_s) *life.ready_at_s -= shift;
      if (life.gone_at_s) *life.gone_at_s -= shift;
    }
    start_ = start;
    settled_at_s_ = 0;
  }

  void Fill(ScenarioRun& run) {
    absl::MutexLock lock(&mu_);
    run.pods = pods_;
    run.settled_at_s = std::max(0.0, settled_at_s_);
    run.final_ready.assign(ready_.begin(), ready_.end());
  }

 private:
  void OnChange(const EndpointSetConstSharedPtr& set) {
    auto at = std::chrono::steady_clock::now();
    std::set<std::string> ready;
    if (set) {
      for (const auto& e : set->endpoints()) {
        if (e.Health() == EndpointHealth::kEligible) ready.insert(e.pod_name);
      }
    }
    absl::MutexLock lock(&mu_);
    // start_ under the lock: SetStart() moves it from the demo's thread.
    double now = std::chrono::duration<double>(at - start_).count();
    if (ready == ready_) return;
    for (const auto& pod : ready) {
      auto& life = pods_[pod];
      if (!life.ready_at_s) life.ready_at_s = now;
      life.gone_at_s.reset();
    }
    for (const auto& pod : ready_) {
      if (!ready.count(pod)) pods_[pod].gone_at_s = now;
    }
    ready_ = std::move(ready);
    settled_at_s_ = now;
  }

  absl::Mutex mu_;
  std::chrono::steady_clock::time_point start_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, PodLife> pods_ ABSL_GUARDED_BY(mu_);
  std::set<std::string> ready_ ABSL_GUARDED_BY(mu_);
  double settled_at_s_ ABSL_GUARDED_BY(mu_) = 0;
  std::unique_ptr<Subscription> subscription_;
};

std::string FormatSeconds(double s) {
  int total = static_cast<int>(s + 0.5);
  if (total >= 60) return absl::StrFormat("%dm%02ds", total / 60, total % 60);
  return absl::StrCat(total, "s");
}

class Progress {
 public:
  Progress(std::ostream* out, bool terminal, size_t runs, double per_run_s)
      : out_(out), terminal_(terminal), runs_(runs), per_run_s_(per_run_s) {}

  void Begin(size_t index, const std::string& strategy, const std::string& scenario) {
    index_ = index;
    label_ = absl::StrCat("[", index + 1, "/", runs_, "] ", strategy, " · ", scenario);
    if (out_ && !terminal_) {
      double remaining = per_run_s_ * static_cast<double>(runs_ - index_);
      *out_ << "demo: " << label_ << " … (about " << FormatSeconds(remaining) << " left)"
            << std::endl;
    }
  }
  void Tick(double elapsed_s) {
    if (!out_ || !terminal_) return;
    double remaining = per_run_s_ * static_cast<double>(runs_ - index_) - elapsed_s;
    *out_ << "\r\033[K" << "demo: " << label_ << "  "
          << absl::StrFormat("%.1f/%.0f s", elapsed_s, per_run_s_ - kOverheadS)
          << ", about " << FormatSeconds(std::max(0.0, remaining)) << " left" << std::flush;
  }
  void End(const std::string& summary) {
    if (!out_) return;
    if (terminal_) *out_ << "\r\033[K";
    *out_ << "demo: " << label_ << ": " << summary << std::endl;
  }

  static constexpr double kOverheadS = 1.5;  // cluster start, warm-up, teardown (estimate)

 private:
  std::ostream* out_;
  bool terminal_;
  size_t runs_;
  double per_run_s_;
  size_t index_ = 0;
  std::string label_;
};

std::string MakeWorkDir() {
  std::string pattern =
      (std::filesystem::temp_directory_path() / "podlb-demo-XXXXXX").string();
  if (!mkdtemp(pattern.data())) return "";
  return pattern;
}

// One (scenario, strategy) run on a fresh cluster.
ScenarioRun RunOne(const DemoOptions& options, const Scenario& scenario,
                   const StrategyCatalog& catalog, const std::string& strategy_name,
                   Progress& progress, std::string* description) {
  WorkloadOptions workload_options = options.workload;
  workload_options.duration_s = std::max(workload_options.duration_s, scenario.min_duration_s);
  if (scenario.deadline) workload_options.deadline = *scenario.deadline;
  ScenarioRun run{.strategy = strategy_name,
                  .scenario = scenario.name,
                  .duration_s = workload_options.duration_s};
  std::string work_dir = MakeWorkDir();
  StrategyOptions strategy_options = options.strategy;
  strategy_options.work_dir = work_dir;
  std::unique_ptr<Strategy> owned_strategy = catalog.Make(strategy_name, strategy_options);
  Strategy& strategy = *owned_strategy;
  *description = strategy.description();
  run.policy = strategy.policy();
  ClusterOptions cluster_options{.replicas = scenario.initial_replicas, .work_dir = work_dir};
  strategy.ConfigureCluster(cluster_options);
  auto finish = [&](std::string error) {
    run.error = std::move(error);
    std::error_code ignored;
    std::filesystem::remove_all(work_dir, ignored);
    return run;
  };
  auto setup_failed = [&](std::string error) {
    run.setup_failed = true;
    return finish(std::move(error));
  };
  auto cluster = options.make_cluster(cluster_options);
  if (!cluster.ok()) return setup_failed("cluster: " + cluster.status().ToString());
  PodObserver observer(std::chrono::steady_clock::now());
  observer.Attach(**cluster);
  if (auto status = (*cluster)->Start(); !status.ok()) {
    return setup_failed("cluster start: " + status.ToString());
  }
  if (strategy.NeedsApiServer() && !(*cluster)->has_api_server()) {
    (*cluster)->Stop();
    run.unavailable = true;
    return setup_failed("needs the cluster's API server, which this cluster does not offer");
  }
  if (scenario.fault) {
    if (auto status = (*cluster)->AnnotateService(kFaultScenarioAnnotations); !status.ok()) {
      (*cluster)->Stop();
      return finish("annotating the Service for the fault scenario: " + status.ToString());
    }
  }
  if (auto status = strategy.Start(**cluster); !status.ok()) {
    // Start may have run part of what it needs (a helper that then failed its readiness check).
    strategy.Stop();
    (*cluster)->Stop();
    run.unavailable = absl::IsUnimplemented(status);
    return setup_failed(absl::StrCat(strategy.name(), ": ",
                                     run.unavailable ? std::string(status.message())
                                                     : status.ToString()));
  }
  std::vector<std::unique_ptr<UnaryCaller>> callers;
  for (int i = 0; i < options.workload.clients; ++i) {
    auto caller = strategy.MakeCaller(i);
    if (!caller.ok()) {
      strategy.Stop();
      (*cluster)->Stop();
      return setup_failed(absl::StrCat(strategy.name(), ": ", caller.status().ToString()));
    }
    callers.push_back(std::move(*caller));
  }
  Workload workload(workload_options, std::move(callers));
  if (auto status = workload.WarmUp(std::chrono::seconds(10)); !status.ok()) {
    workload.Close();
    strategy.Stop();
    (*cluster)->Stop();
    return setup_failed(absl::StrCat(strategy.name(), ": warm-up failed: ", status.ToString()));
  }

  auto start = std::chrono::steady_clock::now();
  observer.SetStart(start);
  std::thread event_thread;
  absl::Mutex event_mu;
  std::string event_error;
  bool event_fired = false;
  const double event_at = workload_options.duration_s / 4;
  // The fault goes to the first pod in name order that is ready when it fires.
  auto make_bad = [&](DemoCluster& c) -> absl::Status {
    EndpointSetConstSharedPtr set = c.registry().Current(c.service());
    std::string pod;
    if (set) {
      for (const auto& e : set->endpoints()) {
        if (e.Health() == EndpointHealth::kEligible && (pod.empty() || e.pod_name < pod))
          pod = e.pod_name;
      }
    }
    if (pod.empty()) return absl::FailedPreconditionError("no ready pod to make bad");
    {
      absl::MutexLock lock(&event_mu);
      run.bad_pod = pod;
    }
    return c.SetPodFault(pod, *scenario.fault);
  };
  std::vector<CallRecord> calls = workload.Run(start, [&](double elapsed) {
    progress.Tick(elapsed);
    if ((scenario.event || scenario.fault) && !event_fired && elapsed >= event_at) {
      event_fired = true;
      run.events.push_back({elapsed, scenario.event_label});
      if (scenario.fault) run.fault_at_s = elapsed;
      event_thread = std::thread([&, c = cluster->get()] {
        auto status = scenario.fault ? make_bad(*c) : scenario.event(*c);
        if (!status.ok()) {
          absl::MutexLock lock(&event_mu);
          event_error = status.ToString();
        }
      });
    }
  });
  if (event_thread.joinable()) event_thread.join();
  observer.Fill(run);
  observer.Detach();
  run.calls = std::move(calls);
  workload.Close();
  strategy.Stop();
  (*cluster)->Stop();
  return finish(event_error.empty() ? "" : scenario.event_label + ": " + event_error);
}

}  // namespace

absl::StatusOr<DemoResult> RunDemo(const DemoOptions& options, const StrategyCatalog& catalog) {
  for (const auto& name : options.strategies) {
    if (!catalog.Has(name)) {
      std::string known;
      for (const auto& n : catalog.names()) known += (known.empty() ? "" : ", ") + n;
      return absl::InvalidArgumentError(
          absl::StrCat("unknown strategy \"", name, "\" (this build has: ", known, ")"));
    }
  }
  for (const auto& name : options.scenarios) {
    if (!FindScenario(name)) {
      std::string known;
      for (const auto& s : AllScenarios()) known += (known.empty() ? "" : ", ") + s.name;
      return absl::InvalidArgumentError(
          absl::StrCat("unknown scenario \"", name, "\" (", known, ")"));
    }
  }
  if (options.workload.clients < 1 || options.workload.rate <= 0 ||
      options.workload.duration_s <= 0) {
    return absl::InvalidArgumentError("WorkloadOptions::clients, WorkloadOptions::rate and WorkloadOptions::duration_s must be "
        "positive");
  }
  DemoResult result{.workload = options.workload, .strategy = options.strategy};
  // Policy variants (proxy-round_robin, ...) run only in the fault scenarios, where the policy
  // is what differs; elsewhere they would repeat the default's rows.
  auto runs_in = [&](const Scenario& scenario, const std::string& strategy_name) {
    return scenario.fault || !catalog.IsPolicyVariant(strategy_name);
  };
  size_t total = 0;
  for (const auto& scenario_name : options.scenarios)
    for (const auto& strategy_name : options.strategies)
      total += runs_in(*FindScenario(scenario_name), strategy_name);
  Progress progress(options.progress, options.progress_is_terminal, total,
                    options.workload.duration_s + Progress::kOverheadS);
  size_t index = 0;
  for (const auto& scenario_name : options.scenarios) {
    const Scenario& scenario = *FindScenario(scenario_name);
    for (const auto& strategy_name : options.strategies) {
      if (!runs_in(scenario, strategy_name)) continue;
      progress.Begin(index++, strategy_name, scenario_name);
      std::string description;
      ScenarioRun run =
          RunOne(options, scenario, catalog, strategy_name, progress, &description);
      bool described = false;
      for (const auto& [name, _] : result.descriptions) described |= name == strategy_name;
      if (!described) result.descriptions.emplace_back(strategy_name, description);
      if (!run.error.empty()) {
        progress.End((run.unavailable    ? "not available on this cluster: "
                      : run.setup_failed ? "set-up failed, nothing measured: "
                                         : "failed: ") +
                     run.error);
      } else {
        Figures f = ComputeFigures(run);
        size_t answered = 0;
        for (const auto& [pod, n] : f.per_pod) answered += n > 0 ? 1 : 0;
        progress.End(absl::StrFormat("%d calls, %d failed, %d of %d pods answered", f.calls,
                                     f.failed_calls, answered, f.per_pod.size()));
      }
      result.runs.push_back(std::move(run));
    }
  }
  return result;
}

}  // namespace podlb::demo
