// `podlb sandbox`: the API-server stand-in plus backend pods; `podlb sandbox scale|restart`
// change the running sandbox's deployments and `podlb sandbox fault` its pods' faults through its
// API server, as kubectl would.
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>

#include "absl/strings/numbers.h"
#include "cli/commands.h"
#include "cli/flag_names.h"
#include "cli/signals.h"
#include "core/logging.h"
#include "sandbox/pods/pod_fault.h"
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
  std::string service_cidr = sandbox::kServiceCidr;
  // scale / restart
  std::string deployment;
  std::string replicas_text;
  CLI::App* scale = nullptr;
  CLI::App* restart = nullptr;
  // fault: strings, checked by the one fault parser rather than by CLI11
  std::string pod;
  std::string delay;
  std::string error_rate;
  std::string error_code;
  bool stuck = false;
  bool clear = false;
  CLI::App* fault = nullptr;
};

constexpr char kFaultHelp[] = R"(
A pod of the sandbox can be made slow, failing or stuck through its annotations; this command
sets them as `kubectl annotate pod` would. The pod's fault becomes exactly what the flags say
(fault annotations not implied by them are removed); --clear removes them all and heals the pod.
The pod takes the change within the controller's reaction to the update (well under a second).

  --delay D          podlb.io/fault-delay: D (0..1h, e.g. 25ms, 1.5s) added to every TestService call
  --error-rate R     podlb.io/fault-error-rate: share R (0..1) of TestService calls fail
  --error-code CODE  podlb.io/fault-error-code: their gRPC status (default UNAVAILABLE)
  --stuck            podlb.io/fault-stuck: "true": calls are never answered (until the client's
                     deadline, or the fault is cleared); connections are still accepted

The pod's health service (its readiness probe) stays SERVING under every fault. The API server
rejects bad values with 422 Invalid, whoever writes them (kubectl, this command, a manifest).

Examples:
  podlb sandbox fault --state-dir /tmp/sbx default/greeter-xxx --delay 25ms
  podlb sandbox fault --state-dir /tmp/sbx greeter-xxx --error-rate 0.5 --error-code INTERNAL
  podlb sandbox fault --state-dir /tmp/sbx greeter-xxx --clear
  kubectl annotate pod greeter-xxx podlb.io/fault-stuck=true     # with kubectl: stuck
  kubectl annotate pod greeter-xxx podlb.io/fault-stuck-         # and healed
)";

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
  if (auto cidr = sandbox::ParseServiceCidr(flags.service_cidr); !cidr.ok()) {
    LogError("podlb sandbox: --service-cidr: {}", std::string(cidr.status().message()));
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
  options.service_cidr = flags.service_cidr;
  if (flags.max_connection_age_s > 0) {
    options.max_connection_age =
        std::chrono::milliseconds(static_cast<int64_t>(flags.max_connection_age_s * 1000));
  }
  // Pods of podlb's own image (deploy/*.yaml applied with kubectl) run as this binary, in
  // directories under the state dir.
  options.state_dir = std::filesystem::absolute(flags.state_dir).string();
  options.podlb_binary = std::filesystem::read_symlink("/proc/self/exe", ec).string();
  sandbox::Sandbox sandbox(options);
  if (auto status = sandbox.Start(); !status.ok()) {
    LogError("podlb sandbox: {}", InFlagTerms(status));
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

// The client of the sandbox running with `state_dir`; nullopt (and logged why) if there is none.
std::optional<sandbox::SandboxClient> ConnectToSandbox(const std::string& state_dir) {
  const std::string kubeconfig = state_dir + "/kubeconfig";
  if (!std::filesystem::exists(kubeconfig)) {
    LogError(
        "podlb sandbox: no kubeconfig at {}: is the sandbox running? start it with "
        "`podlb sandbox --state-dir DIR`",
        kubeconfig);
    return std::nullopt;
  }
  auto creds = LoadKubeconfig(kubeconfig);
  if (!creds.ok()) {
    LogError("podlb sandbox: {}", InFlagTerms(creds.status()));
    return std::nullopt;
  }
  return sandbox::SandboxClient(*creds);
}

int RunClientCommand(const SandboxFlags& flags) {
  if (flags.state_dir.empty()) {
    LogError("podlb sandbox: --state-dir is required (the directory given to `podlb sandbox`)");
    return 2;
  }
  auto deployment = ParseDeployment(flags.deployment);
  if (!deployment.ok()) {
    LogError("podlb sandbox: {}", InFlagTerms(deployment.status()));
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
  auto client = ConnectToSandbox(flags.state_dir);
  if (!client) return 1;
  const auto& [ns, name] = *deployment;
  absl::Status status =
      scale ? client->Scale(ns, name, replicas) : client->RolloutRestart(ns, name);
  if (!status.ok()) {
    LogError("podlb sandbox {}: {}", scale ? "scale" : "restart", InFlagTerms(status));
    return 1;
  }
  if (scale) {
    std::printf("deployment.apps/%s scaled\n", name.c_str());
  } else {
    std::printf("deployment.apps/%s restarted\n", name.c_str());
  }
  return 0;
}

// NAMESPACE/NAME, NAME (namespace default) or kubectl's pod/NAME.
absl::StatusOr<std::pair<std::string, std::string>> ParsePod(const std::string& text) {
  std::string rest = text.starts_with("pod/") ? text.substr(4) : text;
  auto slash = rest.find('/');
  std::string ns = slash == std::string::npos ? "default" : rest.substr(0, slash);
  std::string name = slash == std::string::npos ? rest : rest.substr(slash + 1);
  if (name.starts_with("pod/")) name = name.substr(4);
  if (ns.empty() || name.empty() || name.find('/') != std::string::npos) {
    return absl::InvalidArgumentError(
        "the pod must be NAMESPACE/NAME or NAME (e.g. default/greeter-7d9f-abcde), got \"" + text +
        "\"");
  }
  return std::make_pair(ns, name);
}

int RunFaultCommand(const SandboxFlags& flags) {
  auto pod = ParsePod(flags.pod);
  if (!pod.ok()) {
    LogError("podlb sandbox fault: {}", InFlagTerms(pod.status()));
    return 2;
  }
  bool any =
      !flags.delay.empty() || !flags.error_rate.empty() || !flags.error_code.empty() || flags.stuck;
  if (flags.clear && any) {
    LogError(
        "podlb sandbox fault: --clear removes the fault; give it alone, without --delay, "
        "--error-rate, --error-code or --stuck");
    return 2;
  }
  if (!flags.clear && !any) {
    LogError(
        "podlb sandbox fault: nothing to do: give --delay, --error-rate [--error-code], "
        "--stuck, or --clear (see --help)");
    return 2;
  }
  if (!flags.error_code.empty() && flags.error_rate.empty()) {
    LogError("podlb sandbox fault: --error-code needs --error-rate (the share of calls that fail)");
    return 2;
  }
  // The flags become the annotations, checked by the same parser the API server and the pods use.
  const std::map<std::string, std::string> flag_of = {
      {sandbox::kFaultDelayAnnotation, "--delay"},
      {sandbox::kFaultErrorRateAnnotation, "--error-rate"},
      {sandbox::kFaultErrorCodeAnnotation, "--error-code"},
      {sandbox::kFaultStuckAnnotation, "--stuck"}};
  std::map<std::string, std::string> annotations;
  if (!flags.delay.empty()) annotations[sandbox::kFaultDelayAnnotation] = flags.delay;
  if (!flags.error_rate.empty()) annotations[sandbox::kFaultErrorRateAnnotation] = flags.error_rate;
  if (!flags.error_code.empty()) annotations[sandbox::kFaultErrorCodeAnnotation] = flags.error_code;
  if (flags.stuck) annotations[sandbox::kFaultStuckAnnotation] = "true";
  auto violations = sandbox::FindPodFaultViolations(annotations);
  for (const auto& v : violations) {
    LogError("podlb sandbox fault: {} \"{}\": {}", flag_of.at(v.annotation), v.value, v.detail);
  }
  if (!violations.empty()) return 2;
  sandbox::PodFault fault = sandbox::ParsePodFault(annotations).value_or(sandbox::PodFault{});

  auto client = ConnectToSandbox(flags.state_dir);
  if (!client) return 1;
  const auto& [ns, name] = *pod;
  absl::Status status = client->SetPodFault(ns, name, fault);
  if (!status.ok()) {
    LogError("podlb sandbox fault: {}", InFlagTerms(status));
    return 1;
  }
  if (fault.active()) {
    std::printf("pod/%s fault set: %s\n", name.c_str(), fault.ToString().c_str());
  } else {
    std::printf("pod/%s fault cleared\n", name.c_str());
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
  sub->add_option("--service-cidr", flags->service_cidr,
                  "loopback block Services get their ClusterIPs from (the sandbox's kube-proxy "
                  "listens on them); give concurrent sandboxes blocks of their own")
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

  flags->fault = sub->add_subcommand(
      "fault", "Make a pod of a running sandbox slow, failing or stuck, or heal it (--clear)");
  flags->fault->footer(kFaultHelp);
  flags->fault->add_option("--state-dir", flags->state_dir, "the running sandbox's --state-dir")
      ->required();
  flags->fault->add_option("pod", flags->pod, "NAMESPACE/NAME or NAME of a pod (kubectl get pods)");
  flags->fault->add_option("--delay", flags->delay, "added to every TestService call, e.g. 25ms");
  flags->fault->add_option("--error-rate", flags->error_rate,
                           "share of TestService calls that fail, 0..1");
  flags->fault->add_option("--error-code", flags->error_code,
                           "gRPC status of the failed calls (default UNAVAILABLE)");
  flags->fault->add_flag("--stuck", flags->stuck, "TestService calls are never answered");
  flags->fault->add_flag("--clear", flags->clear, "remove every fault: the pod is healthy again");

  table.push_back({sub, [flags] {
                     if (flags->fault->parsed()) return RunFaultCommand(*flags);
                     if (flags->scale->parsed() || flags->restart->parsed()) {
                       return RunClientCommand(*flags);
                     }
                     return RunSandbox(*flags);
                   }});
}

}  // namespace podlb::cli
