// The three podlb strategies, each run the way a user would run it: `podlb control-plane` and
// `podlb proxy` as child processes of this very binary watching the sandbox's API server, and
// libpodlb in-process. The proxy and the library run with their default policy (peak_ewma);
// the fault scenarios also run them under round_robin and least_request, to show why that
// default was chosen.
#include <stdlib.h>

#include <regex>

#include "absl/strings/str_cat.h"
#include "demo/child_process.h"
#include "demo/strategy.h"
#include "grpcpp/grpcpp.h"
#include "podlb/podlb.h"

namespace podlb::demo {
namespace {

// Starts `argv` and waits for the stdout line matching `pattern`; returns its first group.
absl::StatusOr<std::string> StartAndAwait(ChildProcess& child, std::vector<std::string> argv,
                                          const std::string& pattern) {
  std::string what = argv.size() > 1 ? "podlb " + argv[1] : argv[0];
  if (auto status = child.Start(std::move(argv)); !status.ok()) return status;
  std::regex re(pattern);
  auto line = child.WaitForLine(
      [&](const std::string& l) { return std::regex_search(l, re); }, std::chrono::seconds(15));
  if (!line) {
    return absl::UnavailableError(what +
                                  " exited or did not report ready within 15 s (see its stderr)");
  }
  std::smatch m;
  std::regex_search(*line, m, re);
  return m.size() > 1 ? m[1].str() : *line;
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
    std::string listen = absl::StrCat("127.0.0.1:", options_.xds_port);
    auto port = StartAndAwait(control_plane_,
                              {options_.podlb_binary, "control-plane", "--listen", listen,
                               "--admin", "127.0.0.1:0", "--kubeconfig", cluster.kubeconfig_path(),
                               "--log-level", "warn"},
                              "xds port (\\d+)");
    if (!port.ok()) return port.status();
    auto bootstrap = RunAndCapture(
        {options_.podlb_binary, "bootstrap", "--server", "127.0.0.1:" + *port, "--node-id",
         "podlb-demo"});
    if (!bootstrap.ok()) return bootstrap.status();
    // grpc++ reads its xDS bootstrap from the environment when it creates its XdsClient.
    setenv("GRPC_XDS_BOOTSTRAP_CONFIG", bootstrap->c_str(), 1);
    // C-core 1.51 applies a Cluster's outlier_detection only with this set (gRFC A50's
    // environment guard; later releases enable it by default).
    setenv("GRPC_EXPERIMENTAL_ENABLE_OUTLIER_DETECTION", "true", 1);
    return absl::OkStatus();
  }

  absl::StatusOr<std::unique_ptr<UnaryCaller>> MakeCaller(int client_index) override {
    auto args = IndependentClientArgs(client_index);
    return MakeChannelCaller(grpc::CreateCustomChannel(
        "xds:///greeter.default:50051", grpc::InsecureChannelCredentials(), args));
  }

  void Stop() override { control_plane_.Stop(); }

 private:
  const StrategyOptions options_;
  ChildProcess control_plane_;
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
    auto address = StartAndAwait(
        proxy_,
        {options_.podlb_binary, "proxy", "--listen", "127.0.0.1:0=default/greeter:grpc",
         "--lb", policy(), "--kubeconfig", cluster.kubeconfig_path()},
        "listening on (\\S+) routing");
    if (!address.ok()) return address.status();
    address_ = *address;
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
    kubeconfig_ = cluster.kubeconfig_path();
    return absl::OkStatus();
  }

  absl::StatusOr<std::unique_ptr<UnaryCaller>> MakeCaller(int client_index) override {
    ChannelOptions options;
    if (policy_ == "round_robin") options.policy = LbPolicy::kRoundRobin;
    if (policy_ == "least_request") options.policy = LbPolicy::kLeastRequest;
    options.kubeconfig = kubeconfig_;
    options.channel_args = IndependentClientArgs(client_index);
    auto channel = CreateChannelOrError("kubernetes:///greeter.default:grpc", options);
    if (!channel.ok()) return channel.status();
    return MakeChannelCaller(std::move(*channel));
  }

  void Stop() override {}

 private:
  const std::string policy_;
  std::string kubeconfig_;
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
