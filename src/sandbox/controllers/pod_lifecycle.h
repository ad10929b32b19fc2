// PodLifecycle: what every workload controller of the sandbox does with its pods, together with
// the kubelet's part: it creates a workload's Pod objects (labels, owner reference, nodeName,
// podIP), starts them in the PodRuntime or, when the runtime cannot run their image, leaves them
// Pending with a Warning event (not retried); probes started pods to Ready; terminates them
// (serving through the sandbox's grace period, or at once with the pod's own grace when its
// process drains itself); stops them on helper threads; and deletes their objects and releases
// their IPs once stopped. It also reads the pod watch for pods of its owner kind: pods deleted
// from outside (`kubectl delete pod`) and changed fault annotations.
// Threading: OnPodEvent on the pod watch thread; everything else on the owning controller's
// thread. The controller owns the PodMaps; stopper threads only touch their own atomic flag.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <thread>

#include "absl/synchronization/mutex.h"
#include "core/logging.h"
#include "nlohmann/json.hpp"
#include "sandbox/apiserver/resource_store.h"
#include "sandbox/controllers/nodes.h"
#include "sandbox/controllers/store_watch.h"
#include "sandbox/controllers/work_queue.h"
#include "sandbox/pods/pod_fault.h"
#include "sandbox/pods/pod_runtime.h"

namespace podlb::sandbox {

struct PodLifecycleOptions {
  // Port the pods listen on when the template declares no containerPort.
  uint16_t default_pod_port = 50051;
  // How long a deleted pod stays Terminating (serving, not ready) before it gets GOAWAY, for
  // pods whose runtime does not drain them itself.
  std::chrono::milliseconds grace_period{2000};
  // After the grace period, how long in-flight calls may still finish before they are cancelled.
  std::chrono::milliseconds shutdown_deadline{1000};
  // Delay before the first readiness probe (initialDelaySeconds), and between failed probes.
  std::chrono::milliseconds readiness_delay{0};
  std::chrono::milliseconds probe_period{200};
};

// kPending: the runtime refused the pod's image; it stays Pending until it is deleted.
// kSucceeded, kFailed: its containers ended for good (restartPolicy Never or OnFailure; the
// runtime's Outcome); the object stays, with its logs, until the pod is deleted.
enum class PodPhase { kPending, kStarting, kReady, kSucceeded, kFailed, kTerminating, kStopping };

struct ManagedPod {
  std::string name;
  std::string ns;
  std::string uid;
  std::string owner_key;  // "ns/name" of the workload
  std::string ip;
  std::string node;
  std::string template_hash;
  uint64_t seq = 0;  // creation order, for "newest first"
  PodPhase phase = PodPhase::kStarting;
  WorkQueue::Clock::time_point next_probe;
  WorkQueue::Clock::time_point stop_at;
  std::chrono::milliseconds termination_grace{30000};  // the pod's terminationGracePeriodSeconds
  bool delete_object = true;  // false when someone else already deleted the Pod object
  std::shared_ptr<std::atomic<bool>> stopped;
  std::shared_ptr<std::thread> stopper;
  PodFault fault;  // as last handed to the runtime

  // Counts as one of the workload's pods (not on its way out).
  bool live() const {
    return phase == PodPhase::kPending || phase == PodPhase::kStarting || phase == PodPhase::kReady;
  }
  // Ran to its end and stays until deleted (not live: no workload counts it as running).
  bool finished() const { return phase == PodPhase::kSucceeded || phase == PodPhase::kFailed; }
};
using PodMap = std::map<std::string, ManagedPod>;  // by pod name

// pod-template-hash / controller-revision-hash: changes exactly when the pod template changes.
std::string TemplateHash(const nlohmann::json& pod_template);

class PodLifecycle {
 public:
  // `owner_kind` and `owner_api_version` are the kind in the pods' ownerReferences
  // ("Deployment", "DaemonSet", "Job") and its group version; `queue` is the controller's,
  // keyed by "ns/name" of the owner.
  PodLifecycle(ResourceStore& store, PodRuntime& runtime, PodIpAllocator& ips, WorkQueue& queue,
               std::string owner_kind, PodLifecycleOptions options,
               std::string owner_api_version = "apps/v1");

  // Pod watch thread: queues the owner of a pod deleted from outside or whose faults changed.
  void OnPodEvent(const WatchEvent& event);

  // One reconcile of the workload `owner_key` ("ns/name") of `resource` ("deployments"): harvests
  // stopped pods, applies changed faults, probes starting pods, marks finished the pods whose
  // runtime says so, and stops pods whose grace period ended; then, if the workload exists, `manage` creates and terminates its pods (true if it
  // did) and `write_status` writes its status; if it is gone, its pods terminate. Queues the
  // owner again when its pods need it (probes, grace periods, changes).
  using ManagePods = std::function<bool(const nlohmann::json& owner, PodMap& pods)>;
  using WriteStatus = std::function<void(const nlohmann::json& owner, const PodMap& pods)>;
  void Reconcile(const std::string& resource, const std::string& owner_key,
                 const ManagePods& manage, const WriteStatus& write_status);

  // Creates a pod from `owner`'s spec.template on `node`, named `name_prefix` + 5 random
  // characters, with `extra_labels` added to the template's. Returns the pod, or nullptr when
  // it could not be created or started (logged; the owner is queued again after a back-off).
  ManagedPod* CreatePod(const nlohmann::json& owner, const std::string& name_prefix,
                        const std::string& hash, const nlohmann::json& extra_labels,
                        const std::string& node, PodMap& pods);

  // What the API server and kubelet do on DELETE: marks the object, then stops the pod (a
  // finished pod has nothing running: its object and directory go at once).
  void TerminatePod(ManagedPod& pod);

  // Waits for stops under way (controller shutdown, after the controller thread ended).
  void JoinStoppers();

 private:
  // When the owner wants reconciling next for its pods' probes and grace periods.
  std::optional<WorkQueue::Clock::time_point> NextDue(const PodMap& pods) const;
  void HarvestStopped(const std::string& key, PodMap& pods);
  void ApplyFaults(const std::string& key, PodMap& pods);
  bool ProbeAndExpire(PodMap& pods);
  void BeginStop(ManagedPod& pod, std::chrono::milliseconds deadline);
  // An event about the pod from the kubelet of its node (or `component`).
  void Event(const ManagedPod& pod, const std::string& type, const std::string& reason,
             const std::string& message, const std::string& field_path = "",
             const std::string& component = "kubelet");
  std::string RandomSuffix(size_t length);

  ResourceStore& store_;
  PodRuntime& runtime_;
  PodIpAllocator& ips_;
  WorkQueue& queue_;
  const std::string owner_kind_;
  const PodLifecycleOptions options_;
  const std::string owner_api_version_;

  // Controller thread only.
  std::map<std::string, PodMap> pods_;  // by owner key "ns/name"
  uint64_t next_seq_ = 0;
  std::mt19937 random_{std::random_device{}()};
  LogOnChange start_errors_{LogLevel::kError};

  // What the pod watch thread hands the controller thread.
  absl::Mutex pod_events_mu_;
  // Pods whose objects were deleted from outside (kubectl delete pod), as "ns/owner/pod".
  std::set<std::string> deleted_externally_ ABSL_GUARDED_BY(pod_events_mu_);
  // Fault annotations that changed, by "ns/owner/pod", for the controller thread to apply.
  std::map<std::string, PodFault> changed_faults_ ABSL_GUARDED_BY(pod_events_mu_);
  // Pod watch thread only: its last view of each pod's fault, so only changes wake the owner.
  std::map<std::string, PodFault> seen_faults_;
};

}  // namespace podlb::sandbox
