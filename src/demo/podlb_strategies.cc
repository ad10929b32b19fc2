// The three podlb strategies, each run the way a user would run it: `podlb control-plane` and
// `podlb proxy` as child processes of this very binary watching the sandbox's API server, and
// libpodlb in-process. The proxy and the library run with their default policy (peak_ewma);
// the fault scenarios also run them under round_robin and least_request, to show why that
// default was chosen.
#include <stdlib.h>

#include <regex>

#include "absl/strings/str_cat.h"
#include "process/child_process.h"
#include "demo/readiness_probes.h"
#include "demo/strategy.h"
#include "grpcpp/grpcpp.h"
#include "podlb/podlb.h"

namespace podlb::demo {
namespace {

constexpr auto kReportTimeout = std::chrono::seconds(15);
// Syncing with the sandbox's API server takes well under a second.
constexpr auto kReadyTimeout = std::chrono::seconds(15);

// How a podlb component reaches the cluster's API server: the cluster's kubeconfig, or with
// none the in-cluster config the component finds in its environment (the demo running as a Job).
std::vector<std::string> ApiServerFlags(const DemoCluster& cluster) {
  if (cluster.kubeconfig_path().empty()) return {};
  return {"--kubeconfig", cluster.kubeconfig_path()};
}

std::vector<std::string> Concat(std::vector<std::string> head, const std::vector<std::string>& tail) {
  head.insert(head.end(), tail.begin(), tail.end());
  return head;
}

// Waits for the child's stdout line matching `pattern`; returns its capture groups.
absl::StatusOr<std::vector<std::string>> AwaitLine(ChildProcess& child, const std::string& what,
                                                   const std::string& pattern) {
  std::regex re(pattern);
  auto line = child.WaitForLine([&](const std::string& l) { return std::regex_search(l, re); },
                                kReportTimeout);
  if (!line) {
    return absl::UnavailableError(absl::StrCat(what, " exited or did not report its ports within ",
                                               kReportTimeout.count(), " s (see its stderr)"));
  }
  std::smatch m;
  std::regex_search(*line, m, re);
  std::vector<std::string> groups;
  for (size_t i = 1; i < m.size(); ++i) groups.push_back(m[i].str());
  return groups;
}

class XdsStrategy final : public Strategy {
 public:
  explicit XdsStrategy(StrategyOptions options) : options_(std::move(options)) {}
  std::string name() const override { return "xds"; }
  std::string description() const override {
    return "grpc++'s own xDS client (xds:///greeter.default:50051) against `podlb control-plane`";
  }
  // grpc++ 1.51 knows ROUND_ROBIN and RING_HASH only; outlier detection comes with the fault
  // scenarios' Service annotations.
  std::string policy() const override { return "round_robin"; }
  bool NeedsApiServer() const override { return true; }

  absl::Status Start(DemoCluster& cluster) override {
    const std::string what = "podlb control-plane";
    std::string listen = absl::StrCat("127.0.0.1:", options_.xds_port);
    const ServiceKey service = cluster.service();
    if (auto status = control_plane_.Start(Concat(
            {options_.podlb_binary, "control-plane", "--listen", listen, "--admin", "127.0.0.1:0",
             "--namespace", service.ns, "--log-level", "warn"},
            ApiServerFlags(cluster)));
        !status.ok()) {
      return status;
    }
    auto ports = AwaitLine(control_plane_, what, "xds port (\\d+) admin port (\\d+)");
    if (!ports.ok()) return ports.status();
    // Ready once its admin says the source has synced: xDS answers carry endpoints from then on.
    if (auto status =
            WaitForReadyz(control_plane_, what, "127.0.0.1:" + (*ports)[1], kReadyTimeout);
        !status.ok()) {
      return status;
    }
    auto bootstrap = RunAndCapture({options_.podlb_binary, "bootstrap", "--server",
                                    "127.0.0.1:" + (*ports)[0], "--node-id", "podlb-demo"});
    if (!bootstrap.ok()) return bootstrap.status();
    // grpc++ reads its xDS bootstrap from the environment when it creates its XdsClient.
    setenv("GRPC_XDS_BOOTSTRAP_CONFIG", bootstrap->c_str(), 1);
    // C-core 1.51 applies a Cluster's outlier_detection only with this set (gRFC A50's
    // environment guard; later releases enable it by default).
    setenv("GRPC_EXPERIMENTAL_ENABLE_OUTLIER_DETECTION", "true", 1);
    target_ = absl::StrCat("xds:///", service.name, ".", service.ns, ":50051");
    return absl::OkStatus();
  }

  absl::StatusOr<std::unique_ptr<UnaryCaller>> MakeCaller(int client_index) override {
    auto args = IndependentClientArgs(client_index);
    return MakeChannelCaller(
        grpc::CreateCustomChannel(target_, grpc::InsecureChannelCredentials(), args));
  }

  void Stop() override { control_plane_.Stop(); }

 private:
  const StrategyOptions options_;
  ChildProcess control_plane_;
  std::string target_;  // xds:///greeter.NAMESPACE:50051
};

class ProxyStrategy final : public Strategy {
 public:
  // `policy`: the proxy's --lb (its default, peak_ewma, when empty).
  ProxyStrategy(StrategyOptions options, std::string policy)
      : options_(std::move(options)), policy_(std::move(policy)) {}
  std::string name() const override { return policy_.empty() ? "proxy" : "proxy-" + policy_; }
  std::string description() const override {
    return "plain grpc++ to `podlb proxy` on the node, which balances every call (" + policy() +
           ")";
  }
  std::string policy() const override { return policy_.empty() ? "peak_ewma" : policy_; }
  bool NeedsApiServer() const override { return true; }

  absl::Status Start(DemoCluster& cluster) override {
    const std::string what = "podlb proxy";
    // Port 0 for both: the proxy binds and reports them, so no port is chosen for it here.
    const ServiceKey service = cluster.service();
    if (auto status = proxy_.Start(Concat(
            {options_.podlb_binary, "proxy", "--listen",
             absl::StrCat("127.0.0.1:0=", service.ns, "/", service.name, ":", service.port),
             "--admin", "127.0.0.1:0", "--lb", policy()},
            ApiServerFlags(cluster)));
        !status.ok()) {
      return status;
    }
    auto address = AwaitLine(proxy_, what, "listening on (\\S+) routing");
    if (!address.ok()) return address.status();
    auto admin = AwaitLine(proxy_, what, "admin on port (\\d+)");
    if (!admin.ok()) return admin.status();
    // Ready once its admin says discovery has synced: until then it has no pod to send a call to.
    if (auto status = WaitForReadyz(proxy_, what, "127.0.0.1:" + (*admin)[0], kReadyTimeout);
        !status.ok()) {
      return status;
    }
    address_ = (*address)[0];
    return absl::OkStatus();
  }

  absl::StatusOr<std::unique_ptr<UnaryCaller>> MakeCaller(int client_index) override {
    auto args = IndependentClientArgs(client_index);
    return MakeChannelCaller(grpc::CreateCustomChannel(
        "ipv4:" + address_, grpc::InsecureChannelCredentials(), args));
  }

  void Stop() override { proxy_.Stop(); }

 private:
  const StrategyOptions options_;
  const std::string policy_;
  ChildProcess proxy_;
  std::string address_;
};

class LibraryStrategy final : public Strategy {
 public:
  explicit LibraryStrategy(std::string policy) : policy_(std::move(policy)) {}
  std::string name() const override { return policy_.empty() ? "library" : "library-" + policy_; }
  std::string description() const override {
    return "libpodlb in the client: podlb::CreateChannel(\"kubernetes:///greeter.default:grpc\"), "
           + policy() + " per call";
  }
  std::string policy() const override { return policy_.empty() ? "peak_ewma" : policy_; }
  bool NeedsApiServer() const override { return true; }

  absl::Status Start(DemoCluster& cluster) override {
    kubeconfig_ = cluster.kubeconfig_path();  // empty: the in-cluster config
    const ServiceKey service = cluster.service();
    target_ = absl::StrCat("kubernetes:///", service.name, ".", service.ns, ":", service.port);
    return absl::OkStatus();
  }

  absl::StatusOr<std::unique_ptr<UnaryCaller>> MakeCaller(int client_index) override {
    ChannelOptions options;
    if (policy_ == "round_robin") options.policy = LbPolicy::kRoundRobin;
    if (policy_ == "least_request") options.policy = LbPolicy::kLeastRequest;
    options.kubeconfig = kubeconfig_;
    options.channel_args = IndependentClientArgs(client_index);
    auto channel = CreateChannelOrError(target_, options);
    if (!channel.ok()) return channel.status();
    return MakeChannelCaller(std::move(*channel));
  }

  void Stop() override {}

 private:
  const std::string policy_;
  std::string kubeconfig_;
  std::string target_;  // kubernetes:///greeter.NAMESPACE:grpc
};

}  // namespace

void RegisterPodlbStrategies(StrategyCatalog& catalog) {
  catalog.Add("xds", [](const StrategyOptions& o) { return std::make_unique<XdsStrategy>(o); });
  catalog.Add("proxy", [](const StrategyOptions& o) { return std::make_unique<ProxyStrategy>(o, ""); });
  catalog.Add("library", [](const StrategyOptions&) { return std::make_unique<LibraryStrategy>(""); });
  for (const char* policy : {"round_robin", "least_request"}) {
    catalog.Add(
        std::string("proxy-") + policy,
        [policy](const StrategyOptions& o) { return std::make_unique<ProxyStrategy>(o, policy); },
        /*policy_variant=*/true);
    catalog.Add(
        std::string("library-") + policy,
        [policy](const StrategyOptions&) { return std::make_unique<LibraryStrategy>(policy); },
        /*policy_variant=*/true);
  }
}

}  // namespace podlb::demo
