// SandboxClient: talks to a running `podlb sandbox` through its API server exactly as kubectl
// would (the kubeconfig it wrote, bearer token, its CA, PATCH requests), for the `podlb sandbox
// scale|restart|fault` commands, the demo and tests. One thread per client object.
#pragma once

#include <map>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "discovery/kubernetes/kube_config.h"
#include "nlohmann/json.hpp"
#include "sandbox/pods/pod_fault.h"

namespace podlb::sandbox {

// Credentials come from podlb::LoadKubeconfig (discovery), the same loader every podlb
// component uses; only server, CA data and bearer token are used here.
class SandboxClient {
 public:
  explicit SandboxClient(KubeConfig credentials) : creds_(std::move(credentials)) {}

  // `kubectl scale deployment/NAME --replicas=N`: PATCH on the scale subresource.
  absl::Status Scale(const std::string& ns, const std::string& name, int replicas);
  // `kubectl rollout restart deployment/NAME`: a strategic-merge PATCH of the template's
  // kubectl.kubernetes.io/restartedAt annotation.
  absl::Status RolloutRestart(const std::string& ns, const std::string& name);
  // `kubectl annotate pod NAME podlb.io/fault-...=...`: a merge PATCH that makes the pod's
  // fault annotations say exactly `fault` (those it does not need are removed), so the pod is
  // slow, failing or stuck from the controller's next reaction on. The server validates them.
  absl::Status SetPodFault(const std::string& ns, const std::string& pod, const PodFault& fault);
  // Removes every fault annotation: the pod is healthy again.
  absl::Status ClearPodFault(const std::string& ns, const std::string& pod);
  // `kubectl annotate service NAME K=V...`: a merge PATCH of metadata.annotations.
  absl::Status AnnotateService(const std::string& ns, const std::string& name,
                               const std::map<std::string, std::string>& annotations);

  // One request; returns the parsed JSON body of a 2xx answer.
  absl::StatusOr<nlohmann::json> Request(const std::string& method, const std::string& path,
                                         const std::string& content_type, const std::string& body);

 private:
  KubeConfig creds_;
};

}  // namespace podlb::sandbox
