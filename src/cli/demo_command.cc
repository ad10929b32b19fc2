// `podlb demo`: every strategy through every scenario on fresh sandboxes, measured side by side.
// Flag parsing and wiring only; the demo itself lives in src/demo/.
#include <unistd.h>

#include <iostream>
#include <thread>

#include "absl/strings/str_split.h"
#include "cli/commands.h"
#include "cli/flag_names.h"
#include "cli/signals.h"
#include "core/logging.h"
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
  options.make_cluster = demo::DefaultClusterFactory();
  options.progress = &std::cerr;
  options.progress_is_terminal = isatty(STDERR_FILENO);

  auto result = demo::RunDemo(options, catalog);
  if (!result.ok()) {
    std::cerr << "demo: " << InFlagTerms(result.status()) << std::endl;
    return 2;
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
  for (const auto& run : result->runs) {
    if (!run.error.empty()) return 1;
  }
  return 0;
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
  table.push_back({sub, [flags] { return RunDemoCommand(*flags); }});
}

}  // namespace podlb::cli
