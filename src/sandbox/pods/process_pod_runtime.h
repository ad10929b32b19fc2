// ProcessPodRuntime: the sandbox's kubelet for pods of podlb's own image (deploy/*.yaml). Each
// such pod runs as a child process of the podlb binary, the way a container runtime would run the
// image's entrypoint:
// - argv and environment from the container spec (ContainerPlan: downward API, $(VAR)), plus what
//   a kubelet adds (HOSTNAME, KUBERNETES_SERVICE_HOST/PORT pointing at the sandbox's API server);
// - the pod's ServiceAccount token, CA and namespace written under the pod's own directory in the
//   state dir (never /var/run/secrets: one machine cannot give every pod its own copy there), with
//   PODLB_SERVICEACCOUNT_DIR telling podlb where they are;
// - stdout and stderr appended to a file per container, served by pods/log (`kubectl logs`);
// - readiness and liveness probes polled at their periods; a failed liveness probe or an exit
//   restarts the process with a growing back-off (restartCount, lastState, CrashLoopBackOff in
//   the pod's status), as the pod's restartPolicy says: Always (the default) restarts on any
//   exit; OnFailure only on a non-zero exit or a failed liveness probe; Never not at all. A pod
//   that will not run again is finished: its container `terminated`, its phase Succeeded (every
//   exit 0) or Failed, not ready (PodCompleted); its directory and logs stay until StopPod;
// - termination as the kubelet does it: SIGTERM when the pod is deleted, SIGKILL once the pod's
//   terminationGracePeriodSeconds have passed.
// Pods bind their own loopback IP ($(POD_IP) in the manifests), so replicas cannot collide.
// Thread-safe: the controller starts, probes and terminates; helper threads stop; a prober thread
// of its own runs the probes and restarts.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "process/child_process.h"
#include "sandbox/apiserver/resource_store.h"
#include "sandbox/pods/container_plan.h"
#include "sandbox/pods/pod_runtime.h"

namespace podlb::sandbox {

struct ProcessPodRuntimeOptions {
  // The program pods of podlb's image run (its entrypoint, /podlb); normally the running binary.
  std::string podlb_binary;
  // Pods live in <state_dir>/pods/<namespace>/<pod>/: serviceaccount/, <container>.log.
  std::string state_dir;
  // What pods get as KUBERNETES_SERVICE_HOST/PORT: the sandbox's API server.
  std::string api_host = "127.0.0.1";
  uint16_t api_port = 0;
  std::string ca_pem;
  // A token for ServiceAccount `account` of `ns` (the TokenRequest API's issuer).
  std::function<absl::StatusOr<std::string>(const std::string& ns, const std::string& account)>
      issue_token;
  // Restart back-off: first delay, doubled per restart up to the cap (the kubelet: 10 s, 5 min;
  // shorter here so a test sees a crash loop in seconds).
  std::chrono::milliseconds restart_backoff{1000};
  std::chrono::milliseconds max_restart_backoff{30000};
  // The mounted token is re-issued this often, as the kubelet refreshes a bound token at 80 % of
  // its lifetime (`issue_token` should issue tokens that live longer than this).
  std::chrono::milliseconds token_refresh{std::chrono::minutes(48)};
};

class ProcessPodRuntime : public PodRuntime {
 public:
  ProcessPodRuntime(ResourceStore& store, ProcessPodRuntimeOptions options);
  ~ProcessPodRuntime() override;  // StopAll

  absl::Status CanRun(const nlohmann::json& pod) const override;
  absl::Status StartPod(const PodLaunch& launch) override;
  // OK while the pod's readiness probe (or, without one, its process) says ready.
  absl::Status ProbeReadiness(const std::string& name) override;
  // SIGTERM: the pod's process starts draining; probes stop and nothing restarts it.
  void BeginTermination(const std::string& name) override;
  void SetFault(const std::string&, const PodFault&) override {}  // faults are the test backend's
  // Waits for the process to exit up to the pod's terminationGracePeriodSeconds (not
  // `deadline`, the backend pods' drain time), then SIGKILL; removes the pod's directory.
  void StopPod(const std::string& name, std::chrono::milliseconds deadline) override;
  bool DrainsItself(const std::string&) const override { return true; }
  std::optional<PodOutcome> Outcome(const std::string& name) const override;

  // What the pod's container wrote (`kubectl logs`), or with `previous` what its run before the
  // last restart wrote; NotFound for a pod this runtime does not run.
  absl::StatusOr<std::string> Logs(const std::string& ns, const std::string& pod,
                                   const std::string& container, bool previous = false) const;
  // Every pod: SIGTERM, then SIGKILL after `deadline` (sandbox shutdown).
  void StopAll(std::chrono::milliseconds deadline = std::chrono::seconds(5));

 private:
  using Clock = std::chrono::steady_clock;
  struct Pod {
    PodLaunch launch;
    ContainerPlan plan;
    std::string dir;
    std::string log_path;
    std::vector<std::string> argv;
    std::vector<std::string> env;
    std::atomic<bool> terminating{false};
    std::atomic<bool> ready{false};
    // spec.restartPolicy: "Always", "OnFailure" or "Never".
    std::string restart_policy;
    // kNotFinished, or the PodOutcome once the pod finished (read by Outcome without the lock,
    // which a stop holds for up to the grace period).
    static constexpr int kNotFinished = -1;
    std::atomic<int> outcome{kNotFinished};
    absl::Mutex process_mu;
    std::unique_ptr<ChildProcess> process ABSL_GUARDED_BY(process_mu);
    // The prober thread's own, after StartPod.
    Clock::time_point next_readiness;
    Clock::time_point next_liveness;
    std::optional<Clock::time_point> restart_at;  // set while crashed
    std::optional<Clock::time_point> token_refresh_at;  // set when the account is mounted
    int readiness_successes = 0;
    int readiness_failures = 0;
    int liveness_failures = 0;
    int restarts = 0;
    std::string last_probe_error;  // guarded by process_mu, read by ProbeReadiness
    std::string started_at;        // the current run's start (RFC 3339), set by StartProcess
  };

  absl::Status StartProcess(Pod& pod) ABSL_EXCLUSIVE_LOCKS_REQUIRED(pod.process_mu);
  absl::Status MountServiceAccount(const PodLaunch& launch, const std::string& dir) const;
  std::shared_ptr<Pod> Find(const std::string& name) const;
  void ProbeLoop();
  // One round for `pod`; returns when it next needs the prober.
  Clock::time_point Tend(Pod& pod, Clock::time_point now);
  Clock::time_point TendLocked(Pod& pod, Clock::time_point now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(pod.process_mu);
  void Restart(Pod& pod, const std::string& why) ABSL_EXCLUSIVE_LOCKS_REQUIRED(pod.process_mu);
  // The container ended (`wait_status`) and the restart policy lets it not run again: the pod
  // is Succeeded or Failed for good.
  void Finish(Pod& pod, int wait_status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(pod.process_mu);
  // Writes the container's state into the Pod object (ready, restartCount, state, lastState).
  void ReportStatus(const Pod& pod, const nlohmann::json& state, const nlohmann::json& last_state);

  ResourceStore& store_;
  const ProcessPodRuntimeOptions options_;
  mutable absl::Mutex mu_;
  std::map<std::string, std::shared_ptr<Pod>> pods_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool wake_ ABSL_GUARDED_BY(mu_) = false;
  std::thread prober_;
};

}  // namespace podlb::sandbox
