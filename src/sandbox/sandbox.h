// Sandbox: the whole Kubernetes stand-in on one machine: the ResourceStore, the ApiServer (TLS,
// a random bearer token), the deployment, daemonset, job, endpointslice, namespace and
// serviceaccount controllers and real gRPC backend pods on their own loopback IPs (pods of other
// images are routed by image, RoutingPodRuntime), seeded with Namespace default, Deployment default/greeter and
// Service greeter. Start/Stop from one control thread; accessors are thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "sandbox/apiserver/api_server.h"
#include "sandbox/apiserver/resource_store.h"
#include "sandbox/controllers/daemonset_controller.h"
#include "sandbox/controllers/deployment_controller.h"
#include "sandbox/controllers/endpointslice_controller.h"
#include "sandbox/controllers/job_controller.h"
#include "sandbox/controllers/serviceaccount_controller.h"
#include "sandbox/controllers/namespace_controller.h"
#include "sandbox/network/service_proxy.h"
#include "sandbox/pods/pod_runtime.h"
#include "sandbox/pods/process_pod_runtime.h"
#include "sandbox/pods/routing_pod_runtime.h"
#include "sandbox/seed_objects.h"

namespace podlb::sandbox {

struct SandboxOptions {
  int replicas = 3;  // of default/greeter
  uint16_t pod_port = 50051;
  std::chrono::milliseconds grace_period{2000};
  size_t max_slice_endpoints = 100;
  std::string first_pod_ip = "127.0.0.2";
  std::optional<std::chrono::milliseconds> max_connection_age;
  // false: pods are only objects in the store (instantly ready), for tests with many pods.
  bool run_pods = true;
  bool create_greeter = true;
  bool tls = true;
  uint16_t api_port = 0;
  // Both set (`podlb sandbox` sets them): pods of podlb's own image run as processes of
  // `podlb_binary` (ProcessPodRuntime), each in a directory under `state_dir`. Unset: such pods
  // stay Pending with an event saying so.
  std::string state_dir;
  std::string podlb_binary;
  // Where Services get their ClusterIPs (ParseServiceCidr); sandboxes running at once on one
  // machine need ranges of their own.
  std::string service_cidr = kServiceCidr;
};

class Sandbox {
 public:
  explicit Sandbox(SandboxOptions options = {});
  ~Sandbox();  // Stop

  // Starts everything and seeds the objects; returns once the API server listens.
  absl::Status Start();
  // Stops the controllers, shuts the pods down (GOAWAY, in-flight calls finish) and the server.
  void Stop();

  std::string api_url() const;
  std::string ca_pem() const;
  const std::string& token() const { return token_; }
  std::string Kubeconfig() const;
  // A kubeconfig whose user is ServiceAccount NS/NAME (a token from the TokenRequest API), so
  // a process runs with exactly the RBAC rules bound to that account.
  absl::StatusOr<std::string> ServiceAccountKubeconfig(const std::string& ns,
                                                       const std::string& name) const;
  ResourceStore& store() { return *store_; }
  ApiServer& api_server() { return *api_server_; }
  // The running backend pods (empty when run_pods is false).
  std::vector<std::shared_ptr<BackendPod>> Pods() const;
  std::shared_ptr<BackendPod> FindPod(const std::string& name) const;
  // kube-proxy: serves the Services' ClusterIPs (null when run_pods is false).
  ServiceProxy* service_proxy() { return service_proxy_.get(); }

 private:
  absl::Status SeedObjects();

  const SandboxOptions options_;
  std::string token_;
  std::shared_ptr<ResourceStore> store_;
  std::unique_ptr<ApiServer> api_server_;
  std::unique_ptr<PodRuntime> runtime_;
  GrpcPodRuntime* grpc_runtime_ = nullptr;  // runtime_ when it runs real pods
  std::unique_ptr<ProcessPodRuntime> process_runtime_;  // pods of podlb's image
  // Routes each pod to runtime_ or to podlb's runtime by image; the controllers' runtime.
  std::unique_ptr<RoutingPodRuntime> routing_runtime_;
  std::unique_ptr<PodIpAllocator> ips_;
  std::unique_ptr<DeploymentController> deployments_;
  std::unique_ptr<DaemonSetController> daemonsets_;
  std::unique_ptr<JobController> jobs_;
  std::unique_ptr<ServiceAccountController> serviceaccounts_;
  std::unique_ptr<EndpointSliceController> endpointslices_;
  std::unique_ptr<NamespaceController> namespaces_;
  std::unique_ptr<ServiceProxy> service_proxy_;  // with run_pods: ClusterIPs reach the pods
  bool started_ = false;
};

}  // namespace podlb::sandbox
