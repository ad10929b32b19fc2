// The demo's cluster on a real Kubernetes API server: what `podlb demo --cluster` runs inside the
// user's cluster (as a Job, in a scratch namespace). Each run creates its own backends and
// Services and deletes them at Stop, so runs start from the same state as on the sandbox. The
// backends are `podlb test-server` pods of the podlb-demo image; every change goes through the
// API as kubectl would make it, and the endpoints reach the demo through a KubernetesSource.
#include <random>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "core/logging.h"
#include "demo/cluster.h"
#include "demo/strategy.h"
#include "discovery/kubernetes/api_client.h"
#include "discovery/kubernetes/kubernetes_source.h"
#include "grpcpp/grpcpp.h"
#include "nlohmann/json.hpp"
#include "sandbox/sandbox_client.h"

namespace podlb::demo {
namespace {

using nlohmann::json;

constexpr char kServiceName[] = "greeter";
constexpr char kHeadlessName[] = "greeter-headless";
constexpr char kPortName[] = "grpc";
constexpr int kPort = 50051;
constexpr int kWarmUpCalls = 20;

// Every run's objects carry a label of their own in their selectors: pods of the run before,
// still draining, never join this run's Services.
std::string NewRunLabel() {
  std::mt19937 rng(std::random_device{}());
  return absl::StrCat("run-", absl::Hex(rng() & 0xffffff, absl::kZeroPad6));
}

class KubernetesDemoCluster final : public DemoCluster {
 public:
  KubernetesDemoCluster(KubernetesClusterOptions cluster, ClusterOptions run)
      : cluster_(std::move(cluster)),
        run_(std::move(run)),
        run_label_(NewRunLabel()) {}
  ~KubernetesDemoCluster() override { Stop(); }

  absl::Status Start() override {
    auto client = ApiClient::Create(cluster_.config);
    if (!client.ok()) return client.status();
    client_ = std::move(*client);
    started_ = true;
    auto headless = Create(ServicePath(""), Service(kHeadlessName, /*headless=*/true));
    if (!headless.ok()) return headless.status();
    auto service = Create(ServicePath(""), Service(kServiceName, /*headless=*/false));
    if (!service.ok()) return service.status();
    cluster_ip_ = service->value("/spec/clusterIP"_json_pointer, "");
    if (auto created = Create(DeploymentPath(""), Deployment()); !created.ok()) {
      return created.status();
    }
    source_ = std::make_unique<KubernetesSource>(
        cluster_.config, KubernetesSourceOptions{.ns = cluster_.ns, .services = {kServiceName}},
        registry_);
    if (auto status = source_->Start(); !status.ok()) return status;
    if (auto status = AwaitReadyEndpoints(registry_, this->service(),
                                          static_cast<size_t>(run_.replicas),
                                          cluster_.ready_timeout);
        !status.ok()) {
      return status;
    }
    WarmBackends();
    return absl::OkStatus();
  }

  // Changes as kubectl makes them (scale, rollout restart, annotate), through the one client
  // the sandbox's own verbs use.
  absl::Status Scale(int replicas) override {
    return Client().Scale(cluster_.ns, kServiceName, replicas);
  }
  absl::Status RollingRestart() override {
    return Client().RolloutRestart(cluster_.ns, kServiceName);
  }
  absl::Status SetPodFault(const std::string& pod, const PodFaultSpec& spec) override {
    // The test-server follows its own pod's annotations (--faults-from-pod).
    return Client().SetPodFault(cluster_.ns, pod, ToPodFault(spec));
  }
  absl::Status AnnotateService(const std::map<std::string, std::string>& annotations) override {
    return Client().AnnotateService(cluster_.ns, kServiceName, annotations);
  }

  void Stop() override {
    if (source_) source_->Stop();
    if (!started_) return;
    started_ = false;
    // The Deployment goes with its ReplicaSets and pods (background cascade, as `kubectl
    // delete` does); the pods drain on their own grace. NotFound: already gone.
    for (const std::string& path :
         {DeploymentPath(kServiceName), ServicePath(kServiceName), ServicePath(kHeadlessName)}) {
      auto deleted = SendJson(*client_, "DELETE", path, "application/json",
                              R"({"propagationPolicy":"Background"})");
      if (!deleted.ok() && !absl::IsNotFound(deleted.status())) {
        // The namespace's deletion at the end of the demo takes what is left.
        LogWarn("demo: {}", std::string(deleted.status().message()));
      }
    }
  }

  Registry& registry() override { return registry_; }
  ServiceKey service() const override { return {cluster_.ns, kServiceName, kPortName}; }
  std::string kubeconfig_path() const override { return cluster_.kubeconfig_path; }
  bool has_api_server() const override { return true; }
  std::string cluster_ip_target() const override {
    return cluster_ip_.empty() ? "" : absl::StrCat(cluster_ip_, ":", kPort);
  }
  std::string headless_dns_name() const override {
    return absl::StrCat(kHeadlessName, ".", cluster_.ns, ".svc.cluster.local");
  }

 private:
  std::string ServicePath(const std::string& name) const {
    return absl::StrCat("/api/v1/namespaces/", cluster_.ns, "/services",
                        name.empty() ? "" : "/" + name);
  }
  std::string DeploymentPath(const std::string& name) const {
    return absl::StrCat("/apis/apps/v1/namespaces/", cluster_.ns, "/deployments",
                        name.empty() ? "" : "/" + name);
  }

  absl::StatusOr<json> Create(const std::string& path, const json& object) {
    auto created = SendJson(*client_, "POST", path, "application/json", object.dump());
    if (absl::IsAborted(created.status())) {
      return absl::AlreadyExistsError(absl::StrCat(
          created.status().message(),
          " (left over from an earlier run: delete the namespace and start again)"));
    }
    return created;
  }

  sandbox::SandboxClient Client() const { return sandbox::SandboxClient(cluster_.config); }

  // Each fresh backend process pays for its first calls (allocations, server threads; 3-4x a
  // warm call) here, before any strategy measures it, as the sandbox's in-process pods have
  // long since paid. Otherwise the first strategy of a run meets three cold pods, and peak EWMA
  // rightly reads a cold first call as a slow pod and keeps it from calls for seconds of a short
  // run. Pods that the scenario itself adds start cold, as they do in production.
  void WarmBackends() {
    EndpointSetConstSharedPtr set = registry_.Current(service());
    if (!set) return;
    for (const auto& endpoint : set->endpoints()) {
      if (endpoint.Health() != EndpointHealth::kEligible) continue;
      auto caller = MakeChannelCaller(grpc::CreateChannel("ipv4:" + endpoint.HostPort(),
                                                          grpc::InsecureChannelCredentials()));
      for (int i = 0; i < kWarmUpCalls; ++i) {
        absl::Notification done;
        caller->Call(std::chrono::seconds(1), [&done](CallOutcome) { done.Notify(); });
        done.WaitForNotification();
      }
    }
  }

  json Labels() const {
    return {{"app.kubernetes.io/name", kServiceName},
            {"app.kubernetes.io/part-of", "podlb-demo"},
            {"podlb.io/demo-run", run_label_}};
  }

  json Service(const std::string& name, bool headless) const {
    json spec = {{"selector", Labels()},
                 {"ports",
                  json::array({{{"name", kPortName},
                                {"port", kPort},
                                {"targetPort", kPortName},
                                {"protocol", "TCP"}}})}};
    if (headless) spec["clusterIP"] = "None";
    return {{"apiVersion", "v1"},
            {"kind", "Service"},
            {"metadata", {{"name", name}, {"labels", Labels()}}},
            {"spec", spec}};
  }

  json Deployment() const {
    // Drain as the sandbox's pods do: health NOT_SERVING and still answering for the grace,
    // then GOAWAY; the kubelet's own grace leaves room for that.
    const double drain_s = static_cast<double>(run_.termination_grace.count()) / 1000.0;
    json args = {"test-server", "--listen", absl::StrCat("$(POD_IP):", kPort), "--drain",
                 absl::StrCat(drain_s), "--faults-from-pod"};
    if (run_.max_connection_age) {
      args.push_back("--max-connection-age");
      args.push_back(absl::StrCat(static_cast<double>(run_.max_connection_age->count()) / 1000.0));
    }
    auto field = [](const char* name, const char* path) {
      return json{{"name", name}, {"valueFrom", {{"fieldRef", {{"fieldPath", path}}}}}};
    };
    json container = {
        {"name", "server"},
        {"image", cluster_.image},
        {"imagePullPolicy", cluster_.image_pull_policy},
        {"args", args},
        {"env", json::array({field("POD_IP", "status.podIP"), field("POD_NAME", "metadata.name"),
                             field("POD_NAMESPACE", "metadata.namespace")})},
        {"ports", json::array({{{"name", kPortName}, {"containerPort", kPort}}})},
        {"readinessProbe",
         {{"tcpSocket", {{"port", kPort}}}, {"periodSeconds", 1}, {"failureThreshold", 1}}},
    };
    json pod_spec = {{"containers", json::array({container})},
                     {"terminationGracePeriodSeconds", static_cast<int>(drain_s) + 5}};
    if (!cluster_.backend_service_account.empty()) {
      pod_spec["serviceAccountName"] = cluster_.backend_service_account;
    }
    return {{"apiVersion", "apps/v1"},
            {"kind", "Deployment"},
            {"metadata", {{"name", kServiceName}, {"labels", Labels()}}},
            {"spec",
             {{"replicas", run_.replicas},
              {"selector", {{"matchLabels", Labels()}}},
              {"template", {{"metadata", {{"labels", Labels()}}}, {"spec", pod_spec}}}}}};
  }

  const KubernetesClusterOptions cluster_;
  const ClusterOptions run_;
  const std::string run_label_;
  std::unique_ptr<ApiClient> client_;
  bool started_ = false;
  std::string cluster_ip_;
  Registry registry_;
  std::unique_ptr<KubernetesSource> source_;
};

}  // namespace

ClusterFactory KubernetesClusterFactory(KubernetesClusterOptions options) {
  return [options = std::move(options)](const ClusterOptions& run)
             -> absl::StatusOr<std::unique_ptr<DemoCluster>> {
    if (options.ns.empty() || options.image.empty()) {
      return absl::InvalidArgumentError("demo cluster: a namespace and an image are needed");
    }
    return std::make_unique<KubernetesDemoCluster>(options, run);
  };
}

}  // namespace podlb::demo
