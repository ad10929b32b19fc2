// DeploymentController: kube-controller-manager's deployment controller. For each apps/v1
// Deployment in the store it keeps spec.replicas Pods, created and run through PodLifecycle
// (which also plays the kubelet); scale-down terminates the newest pods first; a changed pod
// template (e.g. `kubectl rollout restart`'s restartedAt annotation) rolls pods one at a time with
// maxSurge 1, maxUnavailable 0. Pods are placed on the nodes round-robin.
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
#include "sandbox/apiserver/resource_store.h"
#include "sandbox/controllers/nodes.h"
#include "sandbox/controllers/pod_lifecycle.h"
#include "sandbox/controllers/store_watch.h"
#include "sandbox/controllers/work_queue.h"
#include "sandbox/pods/pod_runtime.h"

namespace podlb::sandbox {

struct DeploymentControllerOptions : PodLifecycleOptions {
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
  void Run();
  bool ScalePods(const nlohmann::json& deployment, PodMap& pods);
  void UpdateDeploymentStatus(const nlohmann::json& deployment, const PodMap& pods);

  ResourceStore& store_;
  const DeploymentControllerOptions options_;

  WorkQueue queue_;
  PodLifecycle lifecycle_;
  std::unique_ptr<StoreWatch> deployment_watch_;
  std::unique_ptr<StoreWatch> pod_watch_;
  std::thread thread_;

  // Controller thread only.
  size_t next_node_ = 0;
};

}  // namespace podlb::sandbox
