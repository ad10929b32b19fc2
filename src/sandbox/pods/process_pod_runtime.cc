#include "sandbox/pods/process_pod_runtime.h"

#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/status_macros.h"
#include "core/logging.h"
#include "sandbox/controllers/store_watch.h"
#include "sandbox/pods/probe_runner.h"

namespace podlb::sandbox {
namespace {

using json = nlohmann::json;

// The PATH a Debian-based image's containers get.
constexpr char kContainerPath[] = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

absl::Status WriteFile(const std::string& path, const std::string& content, mode_t mode) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << content;
  out.close();
  if (!out) return absl::InternalError(absl::StrCat("cannot write ", path));
  chmod(path.c_str(), mode);
  return absl::OkStatus();
}

}  // namespace

ProcessPodRuntime::ProcessPodRuntime(ResourceStore& store, ProcessPodRuntimeOptions options)
    : store_(store), options_(std::move(options)) {
  prober_ = std::thread([this] { ProbeLoop(); });
}

ProcessPodRuntime::~ProcessPodRuntime() {
  StopAll();
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  prober_.join();
}

absl::Status ProcessPodRuntime::CanRun(const json& pod) const {
  const json& spec = pod.value("spec", json::object());
  size_t containers = spec.value("containers", json::array()).size();
  if (containers != 1 || !spec.value("initContainers", json::array()).empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the sandbox runs pods of podlb's image with exactly one container and no init "
        "containers; this pod has ",
        containers, " containers"));
  }
  return absl::OkStatus();
}

absl::Status ProcessPodRuntime::MountServiceAccount(const PodLaunch& launch,
                                                    const std::string& dir) const {
  const json& spec = launch.pod.value("spec", json::object());
  std::string account = spec.value("serviceAccountName", "");
  if (account.empty()) account = "default";
  if (!options_.issue_token) return absl::FailedPreconditionError("no token issuer");
  auto token = options_.issue_token(launch.ns, account);
  if (!token.ok()) {
    return absl::Status(token.status().code(),
                        absl::StrCat("cannot mount the token of serviceaccount ", launch.ns, "/",
                                     account, ": ", token.status().message()));
  }
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot create ", dir, ": ", ec.message()));
  chmod(dir.c_str(), 0700);
  RETURN_IF_ERROR(WriteFile(dir + "/token", *token, 0600));
  RETURN_IF_ERROR(WriteFile(dir + "/ca.crt", options_.ca_pem, 0644));
  return WriteFile(dir + "/namespace", launch.ns, 0644);
}

absl::Status ProcessPodRuntime::StartPod(const PodLaunch& launch) {
  RETURN_IF_ERROR(CanRun(launch.pod));
  if (options_.state_dir.empty() || options_.podlb_binary.empty()) {
    return absl::FailedPreconditionError(
        "pods of podlb's image run only under `podlb sandbox --state-dir DIR`");
  }
  const json& container = launch.pod["spec"]["containers"][0];
  auto plan = PlanContainer(launch.pod, container, store_);
  if (!plan.ok()) return plan.status();

  auto pod = std::make_shared<Pod>();
  pod->launch = launch;
  pod->plan = *plan;
  pod->dir = absl::StrCat(options_.state_dir, "/pods/", launch.ns, "/", launch.name);
  pod->log_path = absl::StrCat(pod->dir, "/", plan->name, ".log");
  std::error_code ec;
  std::filesystem::create_directories(pod->dir, ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot create ", pod->dir, ": ", ec.message()));
  // A pod that does not start leaves nothing in the state dir (the controller retries with a
  // new pod, which gets a directory of its own).
  absl::Cleanup remove_dir = [dir = pod->dir] {
    std::error_code ignored;
    std::filesystem::remove_all(dir, ignored);
  };

  pod->env = {absl::StrCat("PATH=", kContainerPath), absl::StrCat("HOSTNAME=", launch.name),
              "HOME=/",
              absl::StrCat("KUBERNETES_SERVICE_HOST=", options_.api_host),
              absl::StrCat("KUBERNETES_SERVICE_PORT=", options_.api_port),
              absl::StrCat("KUBERNETES_SERVICE_PORT_HTTPS=", options_.api_port),
              absl::StrCat("KUBERNETES_PORT=tcp://", options_.api_host, ":", options_.api_port)};
  const json& spec = launch.pod.value("spec", json::object());
  if (spec.value("automountServiceAccountToken", true)) {
    std::string mount = pod->dir + "/serviceaccount";
    RETURN_IF_ERROR(MountServiceAccount(launch, mount));
    pod->env.push_back("PODLB_SERVICEACCOUNT_DIR=" + mount);
    pod->token_refresh_at = Clock::now() + options_.token_refresh;
  }
  pod->env.insert(pod->env.end(), plan->env.begin(), plan->env.end());
  const json& restart_policy = spec.contains("restartPolicy") ? spec["restartPolicy"] : json();
  pod->restart_policy = restart_policy.is_string() ? restart_policy.get<std::string>() : "Always";
  pod->argv = {options_.podlb_binary};
  pod->argv.insert(pod->argv.end(), plan->args.begin(), plan->args.end());

  auto now = Clock::now();
  pod->next_readiness = now + (plan->readiness ? plan->readiness->initial_delay : Clock::duration{});
  pod->next_liveness = now + (plan->liveness ? plan->liveness->initial_delay : Clock::duration{});
  {
    absl::MutexLock lock(&pod->process_mu);
    RETURN_IF_ERROR(StartProcess(*pod));
    LogInfo("kubelet: pod {}/{} runs `{}` (pid {}), logs in {}", launch.ns, launch.name,
            absl::StrJoin(plan->args, " "), pod->process->pid(), pod->log_path);
  }
  std::move(remove_dir).Cancel();
  absl::MutexLock lock(&mu_);
  pods_[launch.name] = pod;
  wake_ = true;
  return absl::OkStatus();
}

absl::Status ProcessPodRuntime::StartProcess(Pod& pod) {
  ChildOptions child;
  child.env = pod.env;
  child.inherit_env = false;
  child.output_path = pod.log_path;
  child.working_dir = pod.dir;
  child.own_process_group = true;
  pod.process = std::make_unique<ChildProcess>();
  pod.started_at = NowRfc3339();
  return pod.process->Start(pod.argv, child);
}

std::shared_ptr<ProcessPodRuntime::Pod> ProcessPodRuntime::Find(const std::string& name) const {
  absl::MutexLock lock(&mu_);
  auto it = pods_.find(name);
  return it == pods_.end() ? nullptr : it->second;
}

absl::Status ProcessPodRuntime::ProbeReadiness(const std::string& name) {
  std::shared_ptr<Pod> pod = Find(name);
  if (!pod) return absl::NotFoundError(absl::StrCat("pod ", name, " is not running"));
  if (pod->ready.load()) return absl::OkStatus();
  absl::MutexLock lock(&pod->process_mu);
  return absl::UnavailableError(pod->last_probe_error.empty() ? "not ready yet"
                                                              : pod->last_probe_error);
}

void ProcessPodRuntime::BeginTermination(const std::string& name) {
  std::shared_ptr<Pod> pod = Find(name);
  if (!pod) return;
  pod->terminating = true;
  pod->ready = false;
  absl::MutexLock lock(&pod->process_mu);
  if (pod->process) pod->process->Signal(SIGTERM);
  LogInfo("kubelet: pod {}/{}: SIGTERM, {} ms to exit", pod->launch.ns, name,
          pod->launch.termination_grace.count());
}

void ProcessPodRuntime::StopPod(const std::string& name, std::chrono::milliseconds) {
  std::shared_ptr<Pod> pod = Find(name);
  if (!pod) return;
  pod->terminating = true;
  pod->ready = false;
  {
    absl::MutexLock lock(&pod->process_mu);
    if (pod->process) {
      pod->process->Stop(pod->launch.termination_grace);
      LogInfo("kubelet: pod {}/{} {}", pod->launch.ns, name,
              DescribeWaitStatus(pod->process->wait_status()));
    }
  }
  {
    absl::MutexLock lock(&mu_);
    pods_.erase(name);
  }
  std::error_code ec;
  std::filesystem::remove_all(pod->dir, ec);  // its token goes with it
}

void ProcessPodRuntime::StopAll(std::chrono::milliseconds deadline) {
  std::map<std::string, std::shared_ptr<Pod>> pods;
  {
    absl::MutexLock lock(&mu_);
    pods.swap(pods_);
  }
  for (auto& [name, pod] : pods) {
    pod->terminating = true;
    absl::MutexLock lock(&pod->process_mu);
    if (pod->process) pod->process->Signal(SIGTERM);
  }
  for (auto& [name, pod] : pods) {
    absl::MutexLock lock(&pod->process_mu);
    if (pod->process) pod->process->Stop(deadline);
    std::error_code ec;
    std::filesystem::remove_all(pod->dir, ec);
  }
}

absl::StatusOr<std::string> ProcessPodRuntime::Logs(const std::string& ns, const std::string& name,
                                                    const std::string& container,
                                                    bool previous) const {
  std::shared_ptr<Pod> pod = Find(name);
  if (!pod || pod->launch.ns != ns) {
    return absl::NotFoundError(absl::StrCat("pod ", ns, "/", name, " is not run by this kubelet"));
  }
  if (!container.empty() && container != pod->plan.name) {
    return absl::InvalidArgumentError(
        absl::StrCat("container ", container, " is not valid for pod ", name));
  }
  const std::string path = previous ? pod->log_path + ".previous" : pod->log_path;
  if (previous && !std::filesystem::exists(path)) {
    // The kubelet's words.
    return absl::InvalidArgumentError(absl::StrCat("previous terminated container \"",
                                                   pod->plan.name, "\" in pod \"", name,
                                                   "\" not found"));
  }
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

void ProcessPodRuntime::ProbeLoop() {
  while (true) {
    std::vector<std::shared_ptr<Pod>> pods;
    {
      absl::MutexLock lock(&mu_);
      if (stopping_) return;
      for (const auto& [name, pod] : pods_) pods.push_back(pod);
    }
    // The earliest moment any pod needs the prober again; at most a second away, so a process
    // that exits is noticed within that.
    Clock::time_point next = Clock::now() + std::chrono::seconds(1);
    for (const auto& pod : pods) {
      if (pod->terminating.load()) continue;
      next = std::min(next, Tend(*pod, Clock::now()));
    }
    absl::MutexLock lock(&mu_);
    auto left = std::max(next - Clock::now(), Clock::duration{});
    auto woken = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stopping_ || wake_; };
    mu_.AwaitWithTimeout(absl::Condition(&woken), absl::FromChrono(left));
    wake_ = false;
  }
}

ProcessPodRuntime::Clock::time_point ProcessPodRuntime::Tend(Pod& pod, Clock::time_point now) {
  // A pod being stopped holds its lock for up to its grace period: skip it rather than wait.
  if (!pod.process_mu.TryLock()) return now + std::chrono::milliseconds(100);
  Clock::time_point next = TendLocked(pod, now);
  pod.process_mu.Unlock();
  return next;
}

ProcessPodRuntime::Clock::time_point ProcessPodRuntime::TendLocked(Pod& pod,
                                                                   Clock::time_point now) {
  Clock::time_point next = now + std::chrono::seconds(1);
  // A finished pod keeps its directory and logs until it is stopped; nothing runs to tend.
  if (pod.outcome.load() != Pod::kNotFinished) return next;

  if (pod.token_refresh_at && now >= *pod.token_refresh_at) {
    // podlb re-reads the file when it changes (and at once after a 401).
    absl::Status mounted = MountServiceAccount(pod.launch, pod.dir + "/serviceaccount");
    if (!mounted.ok()) {
      LogWarn("kubelet: pod {}/{}: {}", pod.launch.ns, pod.launch.name,
              std::string(mounted.message()));
    }
    pod.token_refresh_at = now + (mounted.ok() ? options_.token_refresh : std::chrono::seconds(10));
  }
  if (pod.restart_at) {
    if (now < *pod.restart_at) return *pod.restart_at;
    pod.restart_at.reset();
    Restart(pod, "back-off elapsed");
    return now + std::chrono::milliseconds(100);
  }
  if (!pod.process->Running()) {
    int status = pod.process->wait_status();
    if (pod.restart_policy == "Never" || (pod.restart_policy == "OnFailure" && status == 0)) {
      Finish(pod, status);
      return next;
    }
    auto backoff = std::min(options_.restart_backoff * (1 << std::min(pod.restarts, 10)),
                            options_.max_restart_backoff);
    pod.restart_at = now + backoff;
    pod.ready = false;
    LogWarn("kubelet: pod {}/{}: container {} {}; restarting in {} ms", pod.launch.ns,
            pod.launch.name, pod.plan.name, DescribeWaitStatus(status), backoff.count());
    ReportStatus(pod,
                 {{"waiting",
                   {{"reason", "CrashLoopBackOff"},
                    {"message", absl::StrCat("back-off ", backoff.count() / 1000.0,
                                             "s restarting failed container=", pod.plan.name,
                                             " pod=", pod.launch.name, "_", pod.launch.ns)}}}},
                 {{"terminated",
                   {{"exitCode", ExitCode(status)},
                    {"reason", ExitCode(status) == 0 ? "Completed" : "Error"},
                    {"finishedAt", NowRfc3339()}}}});
    return *pod.restart_at;
  }

  if (pod.plan.readiness && now >= pod.next_readiness) {
    const ProbeSpec& probe = *pod.plan.readiness;
    absl::Status result = RunProbe(probe, pod.launch.ip);
    bool was_ready = pod.ready.load();
    if (result.ok()) {
      pod.readiness_failures = 0;
      if (++pod.readiness_successes >= probe.success_threshold) pod.ready = true;
    } else {
      pod.readiness_successes = 0;
      pod.last_probe_error = absl::StrCat("Readiness probe failed: ", result.message());
      if (++pod.readiness_failures >= probe.failure_threshold) pod.ready = false;
    }
    if (was_ready != pod.ready.load()) {
      LogInfo("kubelet: pod {}/{} is {}{}", pod.launch.ns, pod.launch.name,
              pod.ready.load() ? "ready" : "not ready: ",
              pod.ready.load() ? "" : pod.last_probe_error);
      ReportStatus(pod, {{"running", {{"startedAt", pod.started_at}}}}, json());
    }
    pod.next_readiness = now + probe.period;
  } else if (!pod.plan.readiness && !pod.ready.load()) {
    pod.ready = true;  // no readiness probe: ready once the container runs
  }
  if (pod.plan.readiness) next = std::min(next, pod.next_readiness);

  if (pod.plan.liveness && now >= pod.next_liveness) {
    const ProbeSpec& probe = *pod.plan.liveness;
    absl::Status result = RunProbe(probe, pod.launch.ip);
    pod.next_liveness = now + probe.period;
    if (result.ok()) {
      pod.liveness_failures = 0;
    } else if (++pod.liveness_failures >= probe.failure_threshold) {
      std::string why = absl::StrCat("Liveness probe failed: ", result.message());
      if (pod.restart_policy == "Never") {
        // Killed and not restarted: the pod fails, whatever the exit status.
        LogWarn("kubelet: pod {}/{}: container {} killed: {}", pod.launch.ns, pod.launch.name,
                pod.plan.name, why);
        pod.process->Stop(pod.launch.termination_grace);
        int status = pod.process->wait_status();
        Finish(pod, status == 0 ? -1 : status);
        return next;
      }
      Restart(pod, why);
    }
  }
  if (pod.plan.liveness) next = std::min(next, pod.next_liveness);
  return next;
}

void ProcessPodRuntime::Restart(Pod& pod, const std::string& why) {
  LogWarn("kubelet: pod {}/{}: container {} restarts: {}", pod.launch.ns, pod.launch.name,
          pod.plan.name, why);
  if (pod.process->Running()) pod.process->Stop(pod.launch.termination_grace);
  int status = pod.process->wait_status();
  // `kubectl logs --previous` reads what the last run wrote.
  std::error_code ec;
  std::filesystem::rename(pod.log_path, pod.log_path + ".previous", ec);
  ++pod.restarts;
  pod.ready = false;
  pod.readiness_successes = pod.readiness_failures = pod.liveness_failures = 0;
  auto now = Clock::now();
  pod.next_readiness =
      now + (pod.plan.readiness ? pod.plan.readiness->initial_delay : Clock::duration{});
  pod.next_liveness =
      now + (pod.plan.liveness ? pod.plan.liveness->initial_delay : Clock::duration{});
  absl::Status started = StartProcess(pod);
  if (!started.ok()) {
    LogError("kubelet: pod {}/{}: cannot restart: {}", pod.launch.ns, pod.launch.name,
             std::string(started.message()));
  }
  ReportStatus(pod, {{"running", {{"startedAt", pod.started_at}}}},
               {{"terminated",
                 {{"exitCode", ExitCode(status)},
                  {"reason", ExitCode(status) == 0 ? "Completed" : "Error"},
                  {"finishedAt", NowRfc3339()}}}});
}

void ProcessPodRuntime::Finish(Pod& pod, int wait_status) {
  // As the kubelet reports it: the exit code, or 128 + the signal that killed the container.
  int code = ExitCode(wait_status);
  if (code < 0) code = wait_status == -1 ? 1 : 128 - code;
  const bool succeeded = code == 0;
  pod.ready = false;
  pod.outcome = static_cast<int>(succeeded ? PodOutcome::kSucceeded : PodOutcome::kFailed);
  LogInfo("kubelet: pod {}/{}: container {} {}; restartPolicy {}: the pod {}", pod.launch.ns,
          pod.launch.name, pod.plan.name, DescribeWaitStatus(wait_status), pod.restart_policy,
          succeeded ? "succeeded" : "failed");
  json terminated = {{"exitCode", code},
                     {"reason", succeeded ? "Completed" : "Error"},
                     {"startedAt", pod.started_at},
                     {"finishedAt", NowRfc3339()}};
  const int restarts = pod.restarts;
  absl::Status written =
      MutateObject(store_, "pods", pod.launch.ns, pod.launch.name, [&](json& object) {
        json& status = object["status"];
        json& containers = status["containerStatuses"];
        if (!containers.is_array() || containers.empty()) return false;
        json& container = containers[0];
        container["ready"] = false;
        container["started"] = false;
        container["restartCount"] = restarts;
        container["state"] = {{"terminated", terminated}};
        status["phase"] = succeeded ? "Succeeded" : "Failed";
        // The kubelet's words: a completed pod is not ready because it completed.
        std::string reason = succeeded ? "PodCompleted" : "ContainersNotReady";
        SetCondition(status, "ContainersReady", false, reason);
        SetCondition(status, "Ready", false, reason);
        return true;
      });
  if (!written.ok() && written.code() != absl::StatusCode::kNotFound) {
    LogWarn("kubelet: cannot update the status of pod {}/{}: {}", pod.launch.ns, pod.launch.name,
            std::string(written.message()));
  }
}

std::optional<PodOutcome> ProcessPodRuntime::Outcome(const std::string& name) const {
  std::shared_ptr<Pod> pod = Find(name);
  if (!pod) return std::nullopt;
  int outcome = pod->outcome.load();
  if (outcome == Pod::kNotFinished) return std::nullopt;
  return static_cast<PodOutcome>(outcome);
}

void ProcessPodRuntime::ReportStatus(const Pod& pod, const json& state, const json& last_state) {
  const bool ready = pod.ready.load();
  const int restarts = pod.restarts;
  absl::Status written =
      MutateObject(store_, "pods", pod.launch.ns, pod.launch.name, [&](json& object) {
        if (object["metadata"].contains("deletionTimestamp")) return false;
        json& status = object["status"];
        json& containers = status["containerStatuses"];
        if (!containers.is_array() || containers.empty()) return false;
        json& container = containers[0];
        container["ready"] = ready;
        container["started"] = state.contains("running");
        container["restartCount"] = restarts;
        container["state"] = state;
        if (!last_state.is_null()) container["lastState"] = last_state;
        status["phase"] = "Running";
        SetCondition(status, "ContainersReady", ready);
        SetCondition(status, "Ready", ready);
        return true;
      });
  if (!written.ok() && written.code() != absl::StatusCode::kNotFound) {
    LogWarn("kubelet: cannot update the status of pod {}/{}: {}", pod.launch.ns, pod.launch.name,
            std::string(written.message()));
  }
}

}  // namespace podlb::sandbox
