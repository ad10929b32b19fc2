// `podlb demo`: every strategy through every scenario on fresh sandboxes, measured side by side.
// Flag parsing and wiring only; the demo itself lives in src/demo/.
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "cli/commands.h"
#include "cli/flag_names.h"
#include "cli/signals.h"
#include "cli/version.h"
#include "core/logging.h"
#include "demo/cluster_job.h"
#include "demo/port_reservation.h"
#include "demo/report.h"
#include "demo/runner.h"
#include "demo/strategy_registry.h"

namespace podlb::cli {
namespace {

struct DemoFlags {
  std::string strategies;
  std::string scenarios = "steady,scale-up,rolling-restart,scale-down,slow-pod,failing-pod,stuck-pod";
  double duration_s = 10;
  double rate = 200;
  int clients = 4;
  int deadline_ms = 1000;
  double max_connection_age_s = 10;
  bool json = false;
  std::string report;
  // --cluster: run as a Job in the cluster of a kubeconfig; --in-cluster: be that Job.
  bool cluster = false;
  bool in_cluster = false;
  std::string kubeconfig;
  std::string context;
  std::string image = std::string("localhost/podlb-demo:") + kVersion;
  std::string image_pull_policy = "IfNotPresent";
  bool keep_namespace = false;
  double job_timeout_s = 0;  // 0: from the runs asked for
};

std::vector<std::string> SplitList(const std::string& text) {
  std::vector<std::string> out;
  for (absl::string_view part : absl::StrSplit(text, ',', absl::SkipWhitespace())) {
    out.emplace_back(part);
  }
  return out;
}

std::string SelfPath() {
  char buffer[4096];
  ssize_t n = readlink("/proc/self/exe", buffer, sizeof(buffer) - 1);
  return n > 0 ? std::string(buffer, static_cast<size_t>(n)) : "podlb";
}

int RunDemoCommand(const DemoFlags& flags) {
  // Ctrl-C ends the demo at once: pods live in this process and every child process (dnsmasq,
  // podlb components) dies with it (PR_SET_PDEATHSIG).
  std::thread([] {
    WaitForTerminationSignal();
    std::cerr << "\ndemo: interrupted" << std::endl;
    _exit(130);
  }).detach();

  // The sandbox and the pods log every step at info; the demo's own progress says enough.
  SetLogLevel(LogLevel::kWarn);
  demo::StrategyCatalog catalog;
  demo::RegisterAllStrategies(catalog);
  demo::DemoOptions options;
  options.strategies =
      flags.strategies.empty() ? demo::DefaultStrategies(catalog) : SplitList(flags.strategies);
  options.scenarios = SplitList(flags.scenarios);
  options.workload = {.clients = flags.clients,
                      .rate = flags.rate,
                      .duration_s = flags.duration_s,
                      .deadline = std::chrono::milliseconds(flags.deadline_ms)};
  options.strategy.max_connection_age =
      std::chrono::milliseconds(static_cast<int64_t>(flags.max_connection_age_s * 1000));
  options.strategy.podlb_binary = SelfPath();
  // Every xds run's control plane listens on this one port (grpc++'s XdsClient outlives runs).
  // Held for the whole demo, so no connection or other program takes it between runs.
  auto xds_port =
      demo::PortReservation::Reserve("127.0.0.1", demo::PortReservation::Protocols::kTcp);
  if (!xds_port.ok()) {
    std::cerr << "demo: " << InFlagTerms(xds_port.status()) << std::endl;
    return 2;
  }
  options.strategy.xds_port = xds_port->port();
  if (flags.in_cluster) {
    // The Job of `podlb demo --cluster`: backends in this pod's namespace, through the API with
    // this pod's ServiceAccount; podlb's components find the same in-cluster config.
    auto config = LoadInClusterConfig(InClusterEnvFromProcess());
    if (!config.ok()) {
      std::cerr << "demo: --in-cluster: " << config.status().message() << std::endl;
      return 2;
    }
    std::string ns = config->default_namespace;
    if (ns.empty()) {
      std::cerr << "demo: --in-cluster: the ServiceAccount mount names no namespace (its "
                   "namespace file is missing or empty)"
                << std::endl;
      return 2;
    }
    options.make_cluster = demo::KubernetesClusterFactory(
        {.config = *config,
         .ns = ns,
         .image = flags.image,
         .image_pull_policy = flags.image_pull_policy,
         .backend_service_account = demo::kDemoBackendAccount});
  } else {
    options.make_cluster = demo::DefaultClusterFactory();
  }
  options.progress = &std::cerr;
  options.progress_is_terminal = isatty(STDERR_FILENO);

  auto result = demo::RunDemo(options, catalog);
  if (!result.ok()) {
    std::cerr << "demo: " << InFlagTerms(result.status()) << std::endl;
    return 2;
  }
  if (flags.in_cluster) {
    // The pod's log mixes stderr (progress) and stdout: the result starts after the marker.
    std::cerr << std::flush;
    std::cout << demo::kJobResultMarker << std::endl;
  }
  if (flags.json) {
    std::cout << demo::ToJson(*result).dump() << std::endl;
  } else {
    demo::PrintTables(*result, std::cout);
  }
  if (!flags.report.empty()) {
    if (auto status = demo::WriteHtmlReport(*result, flags.report); !status.ok()) {
      std::cerr << "demo: " << InFlagTerms(status) << std::endl;
      return 1;
    }
    std::cerr << "demo: report written to " << flags.report << std::endl;
  }
  // A strategy this cluster cannot offer (no cluster DNS) is reported, not a failure.
  for (const auto& run : result->runs) {
    if (!run.error.empty() && !run.unavailable) return 1;
  }
  return 0;
}

// The Job's flags: the demo's own, passed through as given.
std::vector<std::string> JobDemoArgs(const DemoFlags& flags) {
  std::vector<std::string> args;
  if (!flags.strategies.empty()) args.insert(args.end(), {"--strategies", flags.strategies});
  args.insert(args.end(),
              {"--scenarios", flags.scenarios, "--duration", absl::StrCat(flags.duration_s),
               "--rate", absl::StrCat(flags.rate), "--clients", absl::StrCat(flags.clients),
               "--deadline-ms", absl::StrCat(flags.deadline_ms), "--max-connection-age",
               absl::StrCat(flags.max_connection_age_s)});
  if (flags.json) args.push_back("--json");
  return args;
}

// Upper bound of the demo's time: every scenario with every strategy and variant, each run its
// duration (fault scenarios at least 8 s) plus a generous minute of set-up on a real cluster.
absl::Duration EstimatedDemoTime(const DemoFlags& flags) {
  demo::StrategyCatalog catalog;
  demo::RegisterAllStrategies(catalog);
  size_t strategies =
      flags.strategies.empty() ? catalog.names().size() : SplitList(flags.strategies).size();
  size_t scenarios = SplitList(flags.scenarios).size();
  double per_run = std::max(flags.duration_s, 8.0) + 60;
  return absl::Seconds(static_cast<double>(strategies * scenarios) * per_run) + absl::Minutes(5);
}

int RunClusterDemo(const DemoFlags& flags) {
  if (!flags.report.empty()) {
    std::cerr << "demo: --report is not available with --cluster (the Job prints tables or "
                 "--json; render a report with a local `podlb demo --report`)"
              << std::endl;
    return 2;
  }
  std::string path = flags.kubeconfig;
  if (path.empty()) {
    const char* env = std::getenv("KUBECONFIG");
    const char* home = std::getenv("HOME");
    if (env != nullptr && *env != '\0') {
      path = std::string(env).substr(0, std::string(env).find(':'));
    } else if (home != nullptr) {
      path = std::string(home) + "/.kube/config";
    }
  }
  if (path.empty() || !std::filesystem::exists(path)) {
    std::cerr << "demo: --cluster needs a kubeconfig: pass --kubeconfig FILE (none at \"" << path
              << "\")" << std::endl;
    return 2;
  }
  auto config = LoadKubeconfig(path, flags.context);
  if (!config.ok()) {
    std::cerr << "demo: " << config.status().message() << std::endl;
    return 2;
  }
  demo::ClusterDemoJob job({.config = *config,
                            .image = flags.image,
                            .image_pull_policy = flags.image_pull_policy,
                            .demo_args = JobDemoArgs(flags),
                            .keep_namespace = flags.keep_namespace,
                            .timeout = flags.job_timeout_s > 0 ? absl::Seconds(flags.job_timeout_s)
                                                               : EstimatedDemoTime(flags),
                            .progress = &std::cerr,
                            .result = &std::cout});
  // Ctrl-C: the namespace (and with it the Job and every backend) goes before we do.
  std::thread([&job] {
    WaitForTerminationSignal();
    std::cerr << "\ndemo: interrupted" << std::endl;
    job.Cleanup();
    _exit(130);
  }).detach();
  auto code = job.Run();
  if (!code.ok()) {
    std::cerr << "demo: " << code.status().message() << std::endl;
    return 1;
  }
  return *code;
}

}  // namespace

void AddDemoCommand(CLI::App& app, CommandTable& table) {
  auto flags = std::make_shared<DemoFlags>();
  auto* sub = app.add_subcommand(
      "demo", "Run every load-balancing strategy through every scenario and compare them");
  sub->add_option("--strategies", flags->strategies,
                  "Comma-separated: clusterip,dns,dns-maxage,xds,proxy,library, and "
                  "proxy-round_robin, proxy-least_request, library-round_robin, "
                  "library-least_request (fault scenarios only) (default: all this build has)");
  sub->add_option("--scenarios", flags->scenarios,
                  "Comma-separated: steady,scale-up,rolling-restart,scale-down,slow-pod,"
                  "failing-pod,stuck-pod (fault scenarios run at least 8 s)")
      ->capture_default_str();
  sub->add_option("--duration", flags->duration_s, "Seconds of load per run")
      ->capture_default_str();
  sub->add_option("--rate", flags->rate, "Calls per second, all clients together")
      ->capture_default_str();
  sub->add_option("--clients", flags->clients, "Independent client channels")
      ->capture_default_str();
  sub->add_option("--deadline-ms", flags->deadline_ms, "Per-call deadline")
      ->capture_default_str();
  sub->add_option("--max-connection-age", flags->max_connection_age_s,
                  "Servers' MAX_CONNECTION_AGE in seconds for dns-maxage")
      ->capture_default_str();
  sub->add_flag("--json", flags->json, "Print one JSON object instead of tables");
  sub->add_option("--report", flags->report, "Write a self-contained HTML report to this file");
  auto* cluster = sub->add_flag("--cluster", flags->cluster,
                "Run the demo inside a Kubernetes cluster (a Job in a scratch namespace, deleted "
                "afterwards) instead of on the embedded sandbox");
  sub->add_option("--kubeconfig", flags->kubeconfig,
                  "With --cluster: the cluster's kubeconfig (default $KUBECONFIG, else "
                  "~/.kube/config)")
      ->needs(cluster);
  sub->add_option("--context", flags->context, "With --cluster: the kubeconfig context")
      ->needs(cluster);
  sub->add_option("--image", flags->image,
                  "With --cluster: the podlb-demo image as the cluster's nodes pull it")
      ->capture_default_str();
  sub->add_option("--image-pull-policy", flags->image_pull_policy,
                  "With --cluster: Always, IfNotPresent or Never")
      ->check(CLI::IsMember({"Always", "IfNotPresent", "Never"}))
      ->capture_default_str();
  sub->add_flag("--keep-namespace", flags->keep_namespace,
                "With --cluster: leave the scratch namespace for inspection")
      ->needs(cluster);
  sub->add_option("--job-timeout", flags->job_timeout_s,
                  "With --cluster: seconds the Job may run (default: from the runs asked for)")
      ->needs(cluster)
      ->check(CLI::PositiveNumber);
  sub->add_flag("--in-cluster", flags->in_cluster,
                "Be the Job of --cluster: backends in this pod's namespace, through its "
                "ServiceAccount")
      ->group("");  // not for users: --cluster starts it
  table.push_back({sub, [flags] {
                     if (flags->cluster && flags->in_cluster) {
                       std::cerr << "demo: --cluster and --in-cluster exclude each other"
                                 << std::endl;
                       return 2;
                     }
                     return flags->cluster ? RunClusterDemo(*flags) : RunDemoCommand(*flags);
                   }});
}

}  // namespace podlb::cli
