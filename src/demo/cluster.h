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
#include "absl/time/time.h"
#include "core/registry.h"
#include "discovery/kubernetes/kube_config.h"

namespace podlb::sandbox {
struct PodFault;
}  // namespace podlb::sandbox

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

// The fault as the podlb.io/fault-* annotations say it (what SetPodFault writes).
sandbox::PodFault ToPodFault(const PodFaultSpec& spec);

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
  // A kubeconfig for podlb components that watch the API server; empty if there is none, or
  // when they should use the in-cluster config this process runs with (has_api_server()).
  virtual std::string kubeconfig_path() const = 0;
  // Whether podlb components can watch this cluster's API server.
  virtual bool has_api_server() const { return !kubeconfig_path().empty(); }
  // "IP:PORT" of the Service's ClusterIP as the cluster's own kube-proxy serves it; empty when
  // the cluster has none (the clusterip strategy then runs an L4 forwarder of its own).
  virtual std::string cluster_ip_target() const { return ""; }
  // The headless Service's name as cluster DNS serves it; empty when there is no cluster DNS to
  // ask (the dns strategies then serve the name from a dnsmasq of their own).
  virtual std::string headless_dns_name() const { return ""; }
};

// Makes a fresh cluster per scenario run (a seam: tests or other clusters plug in here).
using ClusterFactory =
    std::function<absl::StatusOr<std::unique_ptr<DemoCluster>>(const ClusterOptions&)>;

// The real sandbox (src/sandbox/): API-server stand-in, controllers and backend pods; endpoints
// followed through a KubernetesSource; scale and restart through the API as kubectl does, with
// sandbox::SandboxClient (the same client `podlb sandbox scale|restart|fault` uses, which is how
// the tests' SandboxCluster drives the sandbox out of process).
absl::StatusOr<std::unique_ptr<DemoCluster>> MakeSandboxCluster(const ClusterOptions& options);

// A real cluster (or the sandbox seen only through its API, as on a cluster): each run creates
// in `ns` a Deployment of `podlb test-server` pods from the podlb-demo image behind the Service
// greeter (ClusterIP, port grpc 50051) and greeter-headless (clusterIP: None), follows them
// through a KubernetesSource, and deletes them at Stop. Faults are the pods' podlb.io/fault-*
// annotations, which the test-server follows (its ServiceAccount may get/watch pods).
struct KubernetesClusterOptions {
  KubeConfig config;            // how this process reaches the API server
  std::string kubeconfig_path;  // for podlb components; empty: they use the in-cluster config
  std::string ns;               // the demo's scratch namespace
  std::string image;            // the podlb-demo image (its /podlb test-server)
  std::string image_pull_policy = "IfNotPresent";
  std::string backend_service_account;  // empty: the namespace's default account
  // From creating the Deployment to `replicas` ready endpoints (image pulls on a real cluster).
  absl::Duration ready_timeout = absl::Minutes(3);
};
ClusterFactory KubernetesClusterFactory(KubernetesClusterOptions options);

// Waits until `registry` shows `replicas` eligible (ready, not terminating) endpoints for
// `service`; DeadlineExceeded after `timeout`, saying how many there were.
absl::Status AwaitReadyEndpoints(Registry& registry, const ServiceKey& service, size_t replicas,
                                 absl::Duration timeout);

}  // namespace podlb::demo
