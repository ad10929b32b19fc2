// RoutingPodRuntime: the sandbox's kubelet picks a container runtime by image, as a node would
// pick a RuntimeClass: podlb's own image (repository `podlb` or `podlb-demo`, any registry, any
// tag) goes to the podlb runtime (processes of the podlb binary; absent in an in-process
// sandbox), the sandbox's gRPC test backend (kBackendPodImage) to the backend runtime, and any
// other image is refused with a kubelet-style message (the pod stays Pending). Calls after
// StartPod go to the runtime that started the pod. Thread-safe, like every PodRuntime.
#pragma once

#include <map>
#include <string>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "nlohmann/json.hpp"
#include "sandbox/pods/pod_runtime.h"

namespace podlb::sandbox {

enum class ImageKind { kPodlb, kBackend, kOther };

// Classifies a container image reference ("localhost:5000/podlb:0.1.0", "podlb/backend-pod",
// "nginx@sha256:…") by its repository, ignoring registry, tag and digest.
ImageKind ClassifyImage(const std::string& image);

class RoutingPodRuntime : public PodRuntime {
 public:
  // `podlb` may be null: podlb's image then stays Pending with a message saying where it runs.
  RoutingPodRuntime(PodRuntime& backends, PodRuntime* podlb);

  absl::Status CanRun(const nlohmann::json& pod) const override;
  absl::Status StartPod(const PodLaunch& launch) override;
  absl::Status ProbeReadiness(const std::string& name) override;
  void BeginTermination(const std::string& name) override;
  void SetFault(const std::string& name, const PodFault& fault) override;
  void StopPod(const std::string& name, std::chrono::milliseconds deadline) override;
  bool DrainsItself(const std::string& name) const override;
  std::optional<PodOutcome> Outcome(const std::string& name) const override;

 private:
  // The runtime for the pod's containers, or why none can run them.
  absl::StatusOr<PodRuntime*> Route(const nlohmann::json& pod) const;
  PodRuntime* Started(const std::string& name) const;

  PodRuntime& backends_;
  PodRuntime* const podlb_;
  mutable absl::Mutex mu_;
  std::map<std::string, PodRuntime*> started_ ABSL_GUARDED_BY(mu_);  // by pod name
};

}  // namespace podlb::sandbox
