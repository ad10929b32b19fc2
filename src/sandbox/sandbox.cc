#include "sandbox/sandbox.h"

#include <openssl/rand.h>

#include "absl/strings/escaping.h"
#include "core/logging.h"
#include "core/status_macros.h"

namespace podlb::sandbox {
namespace {

using json = nlohmann::json;

std::string RandomToken() {
  unsigned char bytes[24];
  if (RAND_bytes(bytes, sizeof(bytes)) != 1) {
    // OpenSSL's CSPRNG failing is not recoverable in a meaningful way; abort loudly.
    LogError("sandbox: OpenSSL RAND_bytes failed; cannot create an API token");
    abort();
  }
  return absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(bytes), sizeof(bytes)));
}

}  // namespace

Sandbox::Sandbox(SandboxOptions options) : options_(std::move(options)), token_(RandomToken()) {}

Sandbox::~Sandbox() { Stop(); }

absl::Status Sandbox::Start() {
  if (started_) return absl::FailedPreconditionError("sandbox already started");
  if (options_.replicas < 0) return absl::InvalidArgumentError("sandbox: replicas must be >= 0");
  auto service_cidr = ParseServiceCidr(options_.service_cidr);
  if (!service_cidr.ok()) return service_cidr.status();
  store_ = std::make_shared<ResourceStore>(10000, *service_cidr);
  ApiServerOptions api;
  api.port = options_.api_port;
  api.tls = options_.tls;
  api.tokens = {token_};
  // `kubectl logs`: what a podlb pod wrote; the test backends write nothing (NotFound: empty).
  api.pod_logs = [this](const std::string& ns, const std::string& pod, const std::string& container,
                        bool previous) -> absl::StatusOr<std::string> {
    if (!process_runtime_) return absl::NotFoundError("no podlb pods run here");
    return process_runtime_->Logs(ns, pod, container, previous);
  };
  api_server_ = std::make_unique<ApiServer>(api, store_);
  RETURN_IF_ERROR(api_server_->Start());
  started_ = true;
  if (options_.run_pods && !options_.state_dir.empty() && !options_.podlb_binary.empty()) {
    ProcessPodRuntimeOptions process;
    process.podlb_binary = options_.podlb_binary;
    process.state_dir = options_.state_dir;
    process.api_port = api_server_->port();
    process.ca_pem = api_server_->ca_pem();
    process.issue_token = [this](const std::string& ns, const std::string& account) {
      // Bound tokens, as the kubelet mounts them; an hour outlives any sandbox session's pod
      // restarts, which mount a fresh one.
      return api_server_->IssueServiceAccountToken(ns, account, std::chrono::hours(1));
    };
    process_runtime_ = std::make_unique<ProcessPodRuntime>(*store_, process);
  }

  if (options_.run_pods) {
    GrpcPodRuntimeOptions runtime_options;
    runtime_options.max_connection_age = options_.max_connection_age;
    auto runtime = std::make_unique<GrpcPodRuntime>(runtime_options);
    grpc_runtime_ = runtime.get();
    runtime_ = std::move(runtime);
  } else {
    runtime_ = std::make_unique<NullPodRuntime>();
  }
  // podlb's own image runs as processes under `podlb sandbox`; elsewhere (tests of the class, the
  // demo) its pods stay Pending with a message saying so.
  routing_runtime_ = std::make_unique<RoutingPodRuntime>(*runtime_, process_runtime_.get());
  ips_ = std::make_unique<PodIpAllocator>(options_.first_pod_ip);
  DeploymentControllerOptions deployment_options;
  deployment_options.default_pod_port = options_.pod_port;
  deployment_options.grace_period = options_.grace_period;
  deployments_ =
      std::make_unique<DeploymentController>(*store_, *routing_runtime_, *ips_, deployment_options);
  DaemonSetControllerOptions daemonset_options;
  static_cast<PodLifecycleOptions&>(daemonset_options) = deployment_options;
  daemonset_options.nodes = deployment_options.nodes;
  daemonsets_ =
      std::make_unique<DaemonSetController>(*store_, *routing_runtime_, *ips_, daemonset_options);
  JobControllerOptions job_options;
  static_cast<PodLifecycleOptions&>(job_options) = deployment_options;
  job_options.nodes = deployment_options.nodes;
  jobs_ = std::make_unique<JobController>(*store_, *routing_runtime_, *ips_, job_options);
  EndpointSliceControllerOptions slice_options;
  slice_options.max_endpoints_per_slice = options_.max_slice_endpoints;
  endpointslices_ = std::make_unique<EndpointSliceController>(*store_, slice_options);
  namespaces_ = std::make_unique<NamespaceController>(*store_);
  RETURN_IF_ERROR(namespaces_->Start());
  serviceaccounts_ = std::make_unique<ServiceAccountController>(*store_);
  RETURN_IF_ERROR(serviceaccounts_->Start());
  RETURN_IF_ERROR(endpointslices_->Start());
  RETURN_IF_ERROR(deployments_->Start());
  RETURN_IF_ERROR(daemonsets_->Start());
  RETURN_IF_ERROR(jobs_->Start());
  if (options_.run_pods) service_proxy_ = std::make_unique<ServiceProxy>(*store_);
  if (service_proxy_) RETURN_IF_ERROR(service_proxy_->Start());
  RETURN_IF_ERROR(SeedObjects());
  LogInfo("sandbox: API server at {}, {} greeter pods on port {}", api_server_->url(),
          options_.create_greeter ? options_.replicas : 0, options_.pod_port);
  return absl::OkStatus();
}

absl::Status Sandbox::SeedObjects() {
  // The API server made the system namespaces; the Nodes are the ones pods are scheduled onto.
  for (const auto& node : DefaultNodes()) {
    RETURN_IF_ERROR(store_->Create("nodes", "", NodeObject(node)).status());
  }
  if (!options_.create_greeter) return absl::OkStatus();
  RETURN_IF_ERROR(
      store_->Create("services", "default", GreeterService(options_.pod_port)).status());
  RETURN_IF_ERROR(store_
                      ->Create("deployments", "default",
                               GreeterDeployment(options_.replicas, options_.pod_port))
                      .status());
  return absl::OkStatus();
}

void Sandbox::Stop() {
  if (!started_) return;
  started_ = false;
  if (deployments_) deployments_->Stop();
  if (daemonsets_) daemonsets_->Stop();
  if (jobs_) jobs_->Stop();
  if (endpointslices_) endpointslices_->Stop();
  if (namespaces_) namespaces_->Stop();
  if (serviceaccounts_) serviceaccounts_->Stop();
  if (service_proxy_) service_proxy_->Stop();
  // All pods at once, each with GOAWAY and a moment for in-flight calls.
  if (grpc_runtime_) grpc_runtime_->StopAll(std::chrono::milliseconds(1000));
  if (process_runtime_) process_runtime_->StopAll();
  api_server_->Stop();
}

std::string Sandbox::api_url() const { return api_server_->url(); }
std::string Sandbox::ca_pem() const { return api_server_->ca_pem(); }

std::string Sandbox::Kubeconfig() const {
  return MakeKubeconfig(api_server_->url(), api_server_->ca_pem(), token_);
}

absl::StatusOr<std::string> Sandbox::ServiceAccountKubeconfig(const std::string& ns,
                                                              const std::string& name) const {
  auto token = api_server_->IssueServiceAccountToken(ns, name, std::chrono::hours(24));
  if (!token.ok()) return token.status();
  return MakeKubeconfig(api_server_->url(), api_server_->ca_pem(), *token);
}

std::vector<std::shared_ptr<BackendPod>> Sandbox::Pods() const {
  return grpc_runtime_ ? grpc_runtime_->Pods() : std::vector<std::shared_ptr<BackendPod>>{};
}

std::shared_ptr<BackendPod> Sandbox::FindPod(const std::string& name) const {
  return grpc_runtime_ ? grpc_runtime_->Find(name) : nullptr;
}

}  // namespace podlb::sandbox
