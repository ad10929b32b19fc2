// DemoCluster: the "Kubernetes" one demo scenario runs against: a Deployment of backend pods
// behind the Service default/greeter (port name grpc, 50051), changed by Scale and
// RollingRestart, with the Service's endpoints (EndpointSlice conditions) published to a Registry.
// Start/Scale/RollingRestart/Stop from one control thread at a time; registry() from any thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/registry.h"

namespace podlb::demo {

struct ClusterOptions {
  int replicas = 3;
  uint16_t pod_port = 50051;
  // Backend servers' MAX_CONNECTION_AGE (the dns-maxage strategy); unset: connections live on.
  std::optional<std::chrono::milliseconds> max_connection_age;
  // How long a deleted pod stays terminating (still serving) before GOAWAY and exit.
  std::chrono::milliseconds termination_grace{1000};
  // Where the cluster may write files (kubeconfig, state).
  std::string work_dir;
};

// What the fault scenarios make one pod do wrong (the sandbox's podlb.io/fault-* contract).
struct PodFaultSpec {
  std::chrono::milliseconds delay{0};
  double error_rate = 0;  // share of calls answered UNAVAILABLE
  bool stuck = false;
};

class DemoCluster {
 public:
  virtual ~DemoCluster() = default;
  // Returns once `replicas` pods are ready and published.
  virtual absl::Status Start() = 0;
  // Ask for the change; they may return before the pods have rolled (as kubectl does). The
  // runner calls them on a helper thread so the workload keeps running either way.
  virtual absl::Status Scale(int replicas) = 0;
  virtual absl::Status RollingRestart() = 0;
  // Makes `pod` slow, failing or stuck (its readiness stays green), through the API.
  virtual absl::Status SetPodFault(const std::string& pod, const PodFaultSpec& fault) = 0;
  // Sets annotations on the Service (the fault scenarios' outlier settings), through the API.
  virtual absl::Status AnnotateService(const std::map<std::string, std::string>& annotations) = 0;
  virtual void Stop() = 0;

  // The Service's endpoints as its EndpointSlices show them (ready, serving, terminating).
  virtual Registry& registry() = 0;
  virtual ServiceKey service() const = 0;
  // A kubeconfig for podlb components that watch the API server; empty if there is none.
  virtual std::string kubeconfig_path() const = 0;
};

// Makes a fresh cluster per scenario run (a seam: tests or other clusters plug in here).
using ClusterFactory =
    std::function<absl::StatusOr<std::unique_ptr<DemoCluster>>(const ClusterOptions&)>;

// The real sandbox (src/sandbox/): API-server stand-in, controllers and backend pods; endpoints
// followed through a KubernetesSource; scale and restart through the API as kubectl does, with
// sandbox::SandboxClient (the same client `podlb sandbox scale|restart|fault` uses, which is how
// the tests' SandboxCluster drives the sandbox out of process).
absl::StatusOr<std::unique_ptr<DemoCluster>> MakeSandboxCluster(const ClusterOptions& options);

}  // namespace podlb::demo
