// `podlb sandbox`: the API-server stand-in plus backend pods; `podlb sandbox scale|restart`
// change the running sandbox's deployments through its API server, as kubectl would.
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "absl/strings/numbers.h"
#include "cli/commands.h"
#include "cli/signals.h"
#include "core/logging.h"
#include "sandbox/sandbox.h"
#include "sandbox/sandbox_client.h"

namespace podlb::cli {
namespace {

struct SandboxFlags {
  std::string state_dir;
  int replicas = 3;
  int pod_port = 50051;
  double grace_period_s = 2.0;
  int max_slice_endpoints = 100;
  double max_connection_age_s = 0;
  std::string first_pod_ip = "127.0.0.2";
  // scale / restart
  std::string deployment;
  std::string replicas_text;
  CLI::App* scale = nullptr;
  CLI::App* restart = nullptr;
};

bool WriteFileAtomically(const std::string& path, const std::string& content) {
  std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    if (!out) return false;
    out << content;
    if (!out) return false;
  }
  return std::rename(tmp.c_str(), path.c_str()) == 0;
}

int RunSandbox(const SandboxFlags& flags) {
  if (flags.state_dir.empty()) {
    LogError("podlb sandbox: --state-dir is required (where the kubeconfig is written)");
    return 2;
  }
  if (flags.replicas < 0 || flags.replicas > 10000) {
    LogError("podlb sandbox: --replicas must be between 0 and 10000, got {}", flags.replicas);
    return 2;
  }
  if (flags.pod_port <= 0 || flags.pod_port > 65535) {
    LogError("podlb sandbox: --pod-port must be between 1 and 65535, got {}", flags.pod_port);
    return 2;
  }
  if (flags.grace_period_s < 0 || flags.max_slice_endpoints <= 0 ||
      flags.max_connection_age_s < 0) {
    LogError(
        "podlb sandbox: --grace-period and --max-connection-age must be >= 0 and "
        "--max-slice-endpoints > 0");
    return 2;
  }
  std::error_code ec;
  std::filesystem::create_directories(flags.state_dir, ec);
  if (ec) {
    LogError("podlb sandbox: cannot create state dir {}: {}", flags.state_dir, ec.message());
    return 1;
  }
  sandbox::SandboxOptions options;
  options.replicas = flags.replicas;
  options.pod_port = static_cast<uint16_t>(flags.pod_port);
  options.grace_period =
      std::chrono::milliseconds(static_cast<int64_t>(flags.grace_period_s * 1000));
  options.max_slice_endpoints = static_cast<size_t>(flags.max_slice_endpoints);
  options.first_pod_ip = flags.first_pod_ip;
  if (flags.max_connection_age_s > 0) {
    options.max_connection_age =
        std::chrono::milliseconds(static_cast<int64_t>(flags.max_connection_age_s * 1000));
  }
  sandbox::Sandbox sandbox(options);
  if (auto status = sandbox.Start(); !status.ok()) {
    LogError("podlb sandbox: {}", std::string(status.message()));
    return 1;
  }
  std::string kubeconfig_path = flags.state_dir + "/kubeconfig";
  nlohmann::json info = {{"api_url", sandbox.api_url()},    {"pid", static_cast<int64_t>(getpid())},
                         {"kubeconfig", kubeconfig_path},   {"pod_port", flags.pod_port},
                         {"deployment", "default/greeter"}, {"service", "default/greeter"}};
  if (!WriteFileAtomically(kubeconfig_path, sandbox.Kubeconfig()) ||
      !WriteFileAtomically(flags.state_dir + "/sandbox.json", info.dump(2) + "\n")) {
    LogError("podlb sandbox: cannot write {} (check permissions)", flags.state_dir);
    return 1;
  }
  std::fputs("ready\n", stdout);
  std::fflush(stdout);
  int sig = WaitForTerminationSignal();
  LogInfo("podlb sandbox: signal {}, shutting down", sig);
  sandbox.Stop();
  std::filesystem::remove(flags.state_dir + "/sandbox.json", ec);
  return 0;
}

absl::StatusOr<std::pair<std::string, std::string>> ParseDeployment(const std::string& text) {
  auto slash = text.find('/');
  std::string ns = slash == std::string::npos ? "default" : text.substr(0, slash);
  std::string name = slash == std::string::npos ? text : text.substr(slash + 1);
  if (name.starts_with("deployment/")) name = name.substr(11);  // kubectl's TYPE/NAME form
  if (ns.empty() || name.empty() || name.find('/') != std::string::npos) {
    return absl::InvalidArgumentError(
        "deployment must be NAMESPACE/NAME (e.g. default/greeter), got \"" + text + "\"");
  }
  return std::make_pair(ns, name);
}

int RunClientCommand(const SandboxFlags& flags) {
  if (flags.state_dir.empty()) {
    LogError("podlb sandbox: --state-dir is required (the directory given to `podlb sandbox`)");
    return 2;
  }
  auto deployment = ParseDeployment(flags.deployment);
  if (!deployment.ok()) {
    LogError("podlb sandbox: {}", std::string(deployment.status().message()));
    return 2;
  }
  int replicas = 0;
  bool scale = flags.scale->parsed();
  if (scale &&
      (!absl::SimpleAtoi(flags.replicas_text, &replicas) || replicas < 0 || replicas > 10000)) {
    LogError("podlb sandbox scale: replicas must be a whole number from 0 to 10000, got \"{}\"",
             flags.replicas_text);
    return 2;
  }
  const std::string kubeconfig = flags.state_dir + "/kubeconfig";
  if (!std::filesystem::exists(kubeconfig)) {
    LogError("podlb sandbox: no kubeconfig at {}: is the sandbox running? start it with "
             "`podlb sandbox --state-dir DIR`", kubeconfig);
    return 1;
  }
  auto creds = LoadKubeconfig(kubeconfig);
  if (!creds.ok()) {
    LogError("podlb sandbox: {}", std::string(creds.status().message()));
    return 1;
  }
  sandbox::SandboxClient client(*creds);
  const auto& [ns, name] = *deployment;
  absl::Status status = scale ? client.Scale(ns, name, replicas) : client.RolloutRestart(ns, name);
  if (!status.ok()) {
    LogError("podlb sandbox {}: {}", scale ? "scale" : "restart", std::string(status.message()));
    return 1;
  }
  if (scale) {
    std::printf("deployment.apps/%s scaled\n", name.c_str());
  } else {
    std::printf("deployment.apps/%s restarted\n", name.c_str());
  }
  return 0;
}

}  // namespace

void AddSandboxCommand(CLI::App& app, CommandTable& table) {
  auto flags = std::make_shared<SandboxFlags>();
  auto* sub = app.add_subcommand(
      "sandbox", "Run the Kubernetes API-server stand-in and backend pods until interrupted");
  sub->add_option("--state-dir", flags->state_dir,
                  "directory for kubeconfig and sandbox.json (created if missing)");
  sub->add_option("--replicas", flags->replicas, "pods of default/greeter")->capture_default_str();
  sub->add_option("--pod-port", flags->pod_port, "port every pod listens on, on its own IP")
      ->capture_default_str();
  sub->add_option("--grace-period", flags->grace_period_s,
                  "seconds a deleted pod stays terminating before GOAWAY")
      ->capture_default_str();
  sub->add_option("--max-slice-endpoints", flags->max_slice_endpoints,
                  "endpoints per EndpointSlice")
      ->capture_default_str();
  sub->add_option("--max-connection-age", flags->max_connection_age_s,
                  "seconds; pods send GOAWAY to connections older than this (0: never)");
  sub->add_option("--first-pod-ip", flags->first_pod_ip, "first loopback IP given to a pod")
      ->capture_default_str();

  flags->scale = sub->add_subcommand("scale", "Scale a deployment of a running sandbox");
  flags->scale->add_option("--state-dir", flags->state_dir, "the running sandbox's --state-dir")
      ->required();
  flags->scale->add_option("deployment", flags->deployment, "NAMESPACE/NAME")->required();
  flags->scale->add_option("replicas", flags->replicas_text, "new replica count")->required();

  flags->restart = sub->add_subcommand(
      "restart", "Rolling restart of a deployment of a running sandbox (kubectl rollout restart)");
  flags->restart->add_option("--state-dir", flags->state_dir, "the running sandbox's --state-dir")
      ->required();
  flags->restart->add_option("deployment", flags->deployment, "NAMESPACE/NAME")->required();

  table.push_back({sub, [flags] {
                     if (flags->scale->parsed() || flags->restart->parsed()) {
                       return RunClientCommand(*flags);
                     }
                     return RunSandbox(*flags);
                   }});
}

}  // namespace podlb::cli
