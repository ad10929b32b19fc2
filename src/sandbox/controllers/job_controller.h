// JobController: kube-controller-manager's job controller and TTL-after-finished controller for
// batch/v1 Jobs. For each Job it runs pods (named JOB-xxxxx, owned by the Job, with the
// template's labels) through PodLifecycle, at most spec.parallelism at a time, until
// spec.completions of them succeeded: then the Job is Complete. Pods that fail count toward
// spec.backoffLimit (restartPolicy Never: a new pod per failed pod; OnFailure: the kubelet
// restarts the container in place and its restarts count); past the limit, or past
// activeDeadlineSeconds, the Job is Failed and its running pods are deleted. A finished Job with
// ttlSecondsAfterFinished is deleted that long after it finished, and with it its pods.
// Not done: Indexed completion mode (pods get no index), podFailurePolicy, successPolicy,
// backoffLimitPerIndex, and the pod-failure back-off delay between replacement pods.
// Start/Stop from one control thread; all reconciling happens on the controller's own thread.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <set>
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

struct JobControllerOptions : PodLifecycleOptions {
  std::vector<NodeInfo> nodes = DefaultNodes();
};

class JobController {
 public:
  JobController(ResourceStore& store, PodRuntime& runtime, PodIpAllocator& ips,
                JobControllerOptions options = {});
  ~JobController();  // Stop

  absl::Status Start();
  // Stops reconciling and waits for pod stops already under way.
  void Stop();

 private:
  // What the controller keeps per Job between reconciles (controller thread only).
  struct JobState {
    WorkQueue::Clock::time_point started;  // when startTime was set (activeDeadlineSeconds)
    std::optional<WorkQueue::Clock::time_point> finished;  // when it finished (the TTL)
    std::set<std::string> counted;  // finished pods already in status.succeeded / failed
  };

  void Run();
  // Creates and deletes the Job's pods and writes its status; true if pods changed.
  bool Sync(const nlohmann::json& job, PodMap& pods);
  void Event(const nlohmann::json& job, const std::string& type, const std::string& reason,
             const std::string& message);

  ResourceStore& store_;
  const JobControllerOptions options_;

  WorkQueue queue_;
  PodLifecycle lifecycle_;
  std::unique_ptr<StoreWatch> job_watch_;
  std::unique_ptr<StoreWatch> pod_watch_;
  std::thread thread_;

  // Controller thread only.
  std::map<std::string, JobState> jobs_;  // by "ns/name"
  size_t next_node_ = 0;
};

}  // namespace podlb::sandbox
