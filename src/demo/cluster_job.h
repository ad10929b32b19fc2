// ClusterDemoJob: `podlb demo --cluster`. The demo measured where the user's pods live: real
// kube-proxy, cluster DNS and pod network. Pod IPs are not reachable from a laptop, so the demo
// runs inside the cluster as a Job (`podlb demo --in-cluster`, from the podlb-demo image) in a
// scratch namespace of its own, with a ServiceAccount allowed exactly what the demo does there;
// this side creates all that, relays the Job's progress, prints its result and deletes the
// namespace. Run() on one thread; Cleanup() from any (Ctrl-C).
#pragma once

#include <atomic>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "discovery/kubernetes/api_client.h"
#include "discovery/kubernetes/kube_config.h"

namespace podlb::demo {

// What the Job prints on stdout between its progress and its result (tables or JSON): a pod's
// log mixes its stdout and stderr, so the result is found after this line.
inline constexpr char kJobResultMarker[] = "==== podlb demo result ====";
// The Job's ServiceAccount and the backends' (test-server pods).
inline constexpr char kDemoRunnerAccount[] = "podlb-demo";
inline constexpr char kDemoBackendAccount[] = "podlb-demo-backend";

struct ClusterJobOptions {
  KubeConfig config;
  std::string image;  // the podlb-demo image, as the cluster's nodes can pull it
  std::string image_pull_policy = "IfNotPresent";
  std::vector<std::string> demo_args;  // for `podlb demo --in-cluster` in the Job
  bool keep_namespace = false;
  absl::Duration timeout = absl::Hours(1);  // the Job's activeDeadlineSeconds; our wait too
  absl::Duration poll = absl::Seconds(1);
  std::ostream* progress = nullptr;  // the Job's progress, and ours
  std::ostream* result = nullptr;    // the Job's tables or JSON
};

class ClusterDemoJob {
 public:
  explicit ClusterDemoJob(ClusterJobOptions options);
  ~ClusterDemoJob();

  // Creates the namespace, its RBAC and the Job; relays the Job's log; prints its result; deletes
  // the namespace (unless keep_namespace). Returns the Job's exit code (0 when every run was
  // done, 1 when one failed), or why the Job could not run.
  absl::StatusOr<int> Run();
  // Deletes the scratch namespace, once; any thread.
  void Cleanup();
  std::string ns() const;

 private:
  absl::Status CreateNamespaceAndAccess();
  absl::Status CreateJob();
  absl::StatusOr<int> AwaitJob();
  absl::StatusOr<std::string> JobLog(const std::string& pod);

  const ClusterJobOptions options_;
  std::unique_ptr<ApiClient> client_;
  mutable absl::Mutex mu_;
  std::string ns_ ABSL_GUARDED_BY(mu_);
  bool cleaned_ ABSL_GUARDED_BY(mu_) = false;
};

// The Role of the Job's ServiceAccount in the scratch namespace: what the demo does there (its
// backends' Deployment and Services, scale, rollout restart, pod fault annotations) and what
// podlb's control plane, proxy and library read (Services, EndpointSlices). README "The demo on
// your cluster" lists the same rules.
nlohmann::json DemoRunnerRole(const std::string& ns);
// The backends' Role: their own pod's fault annotations (test-server --faults-from-pod).
nlohmann::json DemoBackendRole(const std::string& ns);

}  // namespace podlb::demo
