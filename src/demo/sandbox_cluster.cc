// The demo's cluster on the real sandbox: API-server stand-in, deployment and endpointslice
// controllers, real backend pods. Its endpoints reach the demo the way they reach podlb: a
// KubernetesSource watching the sandbox's API server over TLS. Scale and restart go through the
// API as `kubectl scale` and `kubectl rollout restart` do, so they return as soon as the API
// accepted them and the controllers roll the pods from there.
#include <fstream>
#include <random>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "demo/cluster.h"
#include "discovery/kubernetes/kube_config.h"
#include "discovery/kubernetes/kubernetes_source.h"
#include "sandbox/sandbox.h"
#include "sandbox/sandbox_client.h"

namespace podlb::demo {
namespace {

std::string RandomPodSubnet() {
  std::mt19937 rng(std::random_device{}());
  return absl::StrCat("127.0.", std::uniform_int_distribution<int>(1, 99)(rng), ".2");
}

// The demo's DemoCluster: the sandbox in this process. Not the tests' podlb::testing::
// SandboxCluster, which runs `podlb sandbox` as a child process (so the proxy tests and their
// sanitizer build need not link the sandbox); both change the cluster through the one
// sandbox::SandboxClient, which is all they have in common.
class InProcessSandboxCluster final : public DemoCluster {
 public:
  explicit InProcessSandboxCluster(ClusterOptions options) : options_(std::move(options)) {}
  ~InProcessSandboxCluster() override { Stop(); }

  absl::Status Start() override {
    sandbox_ = std::make_unique<sandbox::Sandbox>(
        sandbox::SandboxOptions{.replicas = options_.replicas,
                                .pod_port = options_.pod_port,
                                .grace_period = options_.termination_grace,
                                // Its own stretch of 127/8, so a demo beside other sandboxes
                                // (parallel tests) rarely meets a taken pod address.
                                .first_pod_ip = RandomPodSubnet(),
                                .max_connection_age = options_.max_connection_age});
    if (auto status = sandbox_->Start(); !status.ok()) return status;
    kubeconfig_path_ = options_.work_dir + "/kubeconfig";
    {
      std::ofstream out(kubeconfig_path_, std::ios::trunc);
      out << sandbox_->Kubeconfig();
      if (!out) return absl::InternalError("demo: cannot write " + kubeconfig_path_);
    }
    auto config = LoadKubeconfig(kubeconfig_path_);
    if (!config.ok()) return config.status();
    source_ = std::make_unique<KubernetesSource>(
        *config, KubernetesSourceOptions{.ns = "default", .services = {"greeter"}}, registry_);
    if (auto status = source_->Start(); !status.ok()) return status;
    return AwaitReadyEndpoints(registry_, service(), static_cast<size_t>(options_.replicas),
                               absl::Seconds(20));
  }

  absl::Status Scale(int replicas) override {
    return Client().Scale("default", "greeter", replicas);
  }
  absl::Status RollingRestart() override { return Client().RolloutRestart("default", "greeter"); }

  absl::Status SetPodFault(const std::string& pod, const PodFaultSpec& spec) override {
    return Client().SetPodFault("default", pod, ToPodFault(spec));
  }

  absl::Status AnnotateService(const std::map<std::string, std::string>& annotations) override {
    return Client().AnnotateService("default", "greeter", annotations);
  }

  void Stop() override {
    if (source_) source_->Stop();
    if (sandbox_) sandbox_->Stop();
  }

  Registry& registry() override { return registry_; }
  ServiceKey service() const override { return {"default", "greeter", "grpc"}; }
  std::string kubeconfig_path() const override { return kubeconfig_path_; }

 private:
  sandbox::SandboxClient Client() {
    return sandbox::SandboxClient(
        {.server = sandbox_->api_url(), .ca_pem = sandbox_->ca_pem(), .token = sandbox_->token()});
  }

  const ClusterOptions options_;
  Registry registry_;
  std::unique_ptr<sandbox::Sandbox> sandbox_;
  std::unique_ptr<KubernetesSource> source_;
  std::string kubeconfig_path_;
};

}  // namespace

sandbox::PodFault ToPodFault(const PodFaultSpec& spec) {
  return sandbox::PodFault{
      .delay = absl::FromChrono(spec.delay), .error_rate = spec.error_rate, .stuck = spec.stuck};
}

absl::Status AwaitReadyEndpoints(Registry& registry, const ServiceKey& service, size_t replicas,
                                 absl::Duration timeout) {
  // Ready when the Service shows `replicas` ready endpoints, as a client would see it.
  struct Ready {
    absl::Mutex mu;
    size_t ready ABSL_GUARDED_BY(mu) = 0;
  } state;
  auto subscription = registry.Subscribe(
      service, [&](const ServiceKey&, const EndpointSetConstSharedPtr& set) {
        absl::MutexLock lock(&state.mu);
        state.ready = set ? set->CountWithHealth(EndpointHealth::kEligible) : 0;
      });
  absl::MutexLock lock(&state.mu);
  auto enough = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(state.mu) { return state.ready == replicas; };
  if (!state.mu.AwaitWithTimeout(absl::Condition(&enough), timeout)) {
    return absl::DeadlineExceededError(absl::StrCat(
        "demo: the Service ", service.ToString(), " did not reach ", replicas,
        " ready endpoints within ", absl::FormatDuration(timeout), " (", state.ready, " ready)"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<DemoCluster>> MakeSandboxCluster(const ClusterOptions& options) {
  return std::make_unique<InProcessSandboxCluster>(options);
}

}  // namespace podlb::demo
