// DeploymentController: kube-controller-manager's deployment controller and the kubelet in one.
// For each apps/v1 Deployment in the store it keeps spec.replicas Pods (core/v1 objects with
// podIP, phase, Ready condition, nodeName) and runs them through a PodRuntime; scale-down
// terminates the newest pods first; a changed pod template (e.g. `kubectl rollout restart`'s
// restartedAt annotation) rolls pods one at a time with maxSurge 1, maxUnavailable 0. A pod's
// podlb.io/fault-* annotations (PodFault) are handed to the runtime when it starts and whenever
// they change. Deployments of podlb's own image (deploy/) are stored but not run here.
// Start/Stop from one control thread; all reconciling happens on the controller's own thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "core/logging.h"
#include "sandbox/apiserver/resource_store.h"
#include "sandbox/controllers/nodes.h"
#include "sandbox/controllers/store_watch.h"
#include "sandbox/controllers/work_queue.h"
#include "sandbox/pods/pod_fault.h"
#include "sandbox/pods/pod_runtime.h"

namespace podlb::sandbox {

struct DeploymentControllerOptions {
  // Port the pods listen on when the template declares no containerPort.
  uint16_t default_pod_port = 50051;
  // How long a deleted pod stays Terminating (serving, not ready) before it gets GOAWAY.
  std::chrono::milliseconds grace_period{2000};
  // After the grace period, how long in-flight calls may still finish before they are cancelled.
  std::chrono::milliseconds shutdown_deadline{1000};
  // Delay before the first readiness probe (initialDelaySeconds), and between failed probes.
  std::chrono::milliseconds readiness_delay{0};
  std::chrono::milliseconds probe_period{200};
  std::vector<NodeInfo> nodes = DefaultNodes();
};

class DeploymentController {
 public:
  DeploymentController(ResourceStore& store, PodRuntime& runtime, PodIpAllocator& ips,
                       DeploymentControllerOptions options = {});
  ~DeploymentController();  // Stop

  absl::Status Start();
  // Stops reconciling and waits for pod stops already under way. Running pods are left to the
  // runtime's owner (the sandbox stops them all at once).
  void Stop();

 private:
  enum class PodPhase { kStarting, kReady, kTerminating, kStopping };
  struct ManagedPod {
    std::string name;
    std::string ip;
    std::string template_hash;
    uint64_t seq = 0;  // creation order, for "newest first"
    PodPhase phase = PodPhase::kStarting;
    WorkQueue::Clock::time_point next_probe;
    WorkQueue::Clock::time_point stop_at;
    bool delete_object = true;  // false when someone else already deleted the Pod object
    std::shared_ptr<std::atomic<bool>> stopped;
    std::shared_ptr<std::thread> stopper;
    PodFault fault;  // as last handed to the runtime
  };
  using PodMap = std::map<std::string, ManagedPod>;  // by pod name

  void Run();
  void Reconcile(const std::string& key);
  void HarvestStopped(const std::string& key, PodMap& pods);
  void ApplyFaults(const std::string& key, PodMap& pods);
  void ProbeAndExpire(const std::string& ns, const std::string& key, PodMap& pods, bool& changed);
  bool ScalePods(const nlohmann::json& deployment, PodMap& pods);
  void CreatePod(const nlohmann::json& deployment, const std::string& hash, PodMap& pods);
  void TerminatePod(const std::string& ns, ManagedPod& pod);
  void BeginStop(const std::string& key, ManagedPod& pod);
  void UpdateDeploymentStatus(const nlohmann::json& deployment, const PodMap& pods);
  void OnPodEvent(const WatchEvent& event);
  // A container of the template runs podlb's own image (podlb:TAG, REGISTRY/podlb-demo:TAG).
  static bool RunsPodlbImage(const nlohmann::json& deployment);
  std::string RandomSuffix(size_t length);

  ResourceStore& store_;
  PodRuntime& runtime_;
  PodIpAllocator& ips_;
  const DeploymentControllerOptions options_;

  WorkQueue queue_;
  std::unique_ptr<StoreWatch> deployment_watch_;
  std::unique_ptr<StoreWatch> pod_watch_;
  std::thread thread_;

  // Controller thread only.
  std::map<std::string, PodMap> pods_;  // by deployment key "ns/name"
  uint64_t next_seq_ = 0;
  std::set<std::string> podlb_workloads_;  // keys of Deployments left alone (logged once)
  size_t next_node_ = 0;
  std::mt19937 random_{std::random_device{}()};
  LogOnChange start_errors_{LogLevel::kError};

  // What the pod watch thread hands the controller thread.
  absl::Mutex pod_events_mu_;
  // Pods whose objects were deleted from outside (kubectl delete pod).
  std::set<std::string> deleted_externally_ ABSL_GUARDED_BY(pod_events_mu_);
  // Fault annotations that changed, by "ns/deployment/pod", for the controller thread to apply.
  std::map<std::string, PodFault> changed_faults_ ABSL_GUARDED_BY(pod_events_mu_);
  // The pod watch thread's last view of each pod's fault, so only changes wake the controller.
  std::map<std::string, PodFault> seen_faults_;
};

}  // namespace podlb::sandbox
