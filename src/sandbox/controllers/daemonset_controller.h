// DaemonSetController: kube-controller-manager's daemonset controller. For each apps/v1
// DaemonSet in the store it keeps exactly one Pod on every node whose labels match
// spec.template.spec.nodeSelector (pods on other nodes are misscheduled and go), created and run
// through PodLifecycle (which also plays the kubelet). A changed pod template (e.g.
// `kubectl rollout restart daemonset`) is rolled out node by node as updateStrategy RollingUpdate
// with maxSurge 0 says: at most maxUnavailable nodes (default 1; an int or a percentage of the
// scheduled nodes, rounded up) without an available pod; on each, the old pod terminates and the
// new one is created once the old is gone. OnDelete replaces a pod only when it is deleted.
// The status is written as the real controller writes it, for `kubectl get ds` and
// `kubectl rollout status ds/NAME`.
// Start/Stop from one control thread; all reconciling happens on the controller's own thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/logging.h"
#include "sandbox/apiserver/resource_store.h"
#include "sandbox/controllers/nodes.h"
#include "sandbox/controllers/pod_lifecycle.h"
#include "sandbox/controllers/store_watch.h"
#include "sandbox/controllers/work_queue.h"
#include "sandbox/pods/pod_runtime.h"

namespace podlb::sandbox {

struct DaemonSetControllerOptions : PodLifecycleOptions {
  std::vector<NodeInfo> nodes = DefaultNodes();
};

// spec.updateStrategy.rollingUpdate.maxUnavailable of `daemonset` for `desired` scheduled nodes:
// an int, or "N%" of desired rounded up; at least 1 (maxSurge is 0). Absent: 1.
absl::StatusOr<int> MaxUnavailable(const nlohmann::json& daemonset, int desired);

class DaemonSetController {
 public:
  DaemonSetController(ResourceStore& store, PodRuntime& runtime, PodIpAllocator& ips,
                      DaemonSetControllerOptions options = {});
  ~DaemonSetController();  // Stop

  absl::Status Start();
  // Stops reconciling and waits for pod stops already under way. Running pods are left to the
  // runtime's owner (the sandbox stops them all at once).
  void Stop();

 private:
  void Run();
  // The nodes this DaemonSet's pods belong on.
  std::vector<const NodeInfo*> EligibleNodes(const nlohmann::json& daemonset) const;
  bool ManageNodes(const nlohmann::json& daemonset, PodMap& pods);
  void UpdateStatus(const nlohmann::json& daemonset, const PodMap& pods);
  void Event(const nlohmann::json& daemonset, const std::string& type, const std::string& reason,
             const std::string& message);

  ResourceStore& store_;
  const DaemonSetControllerOptions options_;

  WorkQueue queue_;
  PodLifecycle lifecycle_;
  std::unique_ptr<StoreWatch> daemonset_watch_;
  std::unique_ptr<StoreWatch> pod_watch_;
  std::thread thread_;

  // Controller thread only.
  LogOnChange strategy_errors_{LogLevel::kWarn};
};

}  // namespace podlb::sandbox
