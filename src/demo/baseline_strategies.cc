// The three baselines the demo measures podlb against, configured as a Kubernetes user would:
// clusterip (plain grpc++ to a virtual IP that kube-proxy spreads per connection), dns (grpc++'s
// dns resolver with round_robin on a headless name), dns-maxage (the same, with the servers'
// MAX_CONNECTION_AGE: the gRPC maintainers' standard advice).
#include <netdb.h>
#include <sys/socket.h>

#include <random>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "demo/dns_server.h"
#include "demo/readiness_probes.h"
#include "demo/strategy.h"
#include "grpcpp/grpcpp.h"
#include "net/tcp_forwarder.h"

namespace podlb::demo {
namespace {

// A loopback address no pod gets: the Service's "ClusterIP".
constexpr char kClusterIp[] = "127.0.100.1";
// The cluster DNS server's address, as kube-dns has its own Service IP. Pods take 127.0.1-99.x
// and outgoing connections leave from 127.0.0.1, so on this address only dnsmasq binds ports.
constexpr char kDnsServerIp[] = "127.0.101.1";
constexpr char kHeadlessName[] = "greeter.default.svc.cluster.local";
// How long a helper may take to answer its first real request.
constexpr auto kReadyTimeout = std::chrono::seconds(10);

// Whether this process's resolver (cluster DNS in a pod) answers `name`; Unimplemented if not,
// since then this cluster has no DNS that serves Services (the sandbox has none).
absl::Status ExpectResolvable(const std::string& name) {
  addrinfo hints{};
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* result = nullptr;
  int rc = getaddrinfo(name.c_str(), nullptr, &hints, &result);
  if (result != nullptr) freeaddrinfo(result);
  if (rc == 0) return absl::OkStatus();
  return absl::UnimplementedError(
      absl::StrCat("cluster DNS does not resolve ", name, " (", gai_strerror(rc),
                   "): this cluster has no DNS serving its Services"));
}

std::vector<std::string> ReadyAddresses(const EndpointSetConstSharedPtr& set) {
  std::vector<std::string> out;
  if (!set) return out;
  for (const auto& e : set->endpoints()) {
    if (e.Health() == EndpointHealth::kEligible) out.push_back(e.address);
  }
  return out;
}

class ClusterIpStrategy final : public Strategy {
 public:
  std::string name() const override { return "clusterip"; }
  std::string description() const override {
    return "plain grpc++ to a ClusterIP; an L4 forwarder (kube-proxy) picks a random ready pod "
           "per connection";
  }

  absl::Status Start(DemoCluster& cluster) override {
    // On a real cluster, its own kube-proxy: the Service's ClusterIP, as any client would dial it.
    if (std::string target = cluster.cluster_ip_target(); !target.empty()) {
      target_ = "ipv4:" + target;
      if (auto status = ExpectHttp2Server(target, kReadyTimeout); !status.ok()) {
        return absl::UnavailableError(
            absl::StrCat("ClusterIP ", target, " does not reach a pod: ", status.message()));
      }
      return absl::OkStatus();
    }
    slot_ = cluster.registry().Slot(cluster.service());
    forwarder_ = std::make_unique<net::TcpForwarder>(
        kClusterIp, [this](const std::string& /*peer_ip*/) -> std::optional<std::string> {
          // kube-proxy's iptables rules: a uniformly random ready endpoint per new connection.
          auto set = slot_->Load();
          std::vector<const Endpoint*> ready;
          if (set) {
            for (const auto& e : set->endpoints()) {
              if (e.Health() == EndpointHealth::kEligible) ready.push_back(&e);
            }
          }
          if (ready.empty()) return std::nullopt;
          absl::MutexLock lock(&mu_);
          std::uniform_int_distribution<size_t> pick(0, ready.size() - 1);
          return ready[pick(rng_)]->HostPort();
        });
    if (auto status = forwarder_->Start(); !status.ok()) return status;
    // Listening is not forwarding: ready once a connection through it reaches a pod.
    if (auto status = ExpectHttp2Server(forwarder_->address(), kReadyTimeout); !status.ok()) {
      forwarder_->Stop();
      return absl::UnavailableError(
          absl::StrCat("clusterip forwarder: not forwarding: ", status.message()));
    }
    target_ = "ipv4:" + forwarder_->address();
    return absl::OkStatus();
  }

  absl::StatusOr<std::unique_ptr<UnaryCaller>> MakeCaller(int client_index) override {
    auto args = IndependentClientArgs(client_index);
    return MakeChannelCaller(
        grpc::CreateCustomChannel(target_, grpc::InsecureChannelCredentials(), args));
  }

  void Stop() override {
    if (forwarder_) forwarder_->Stop();
  }

 private:
  std::string target_;  // the grpc++ target: the cluster's ClusterIP or our forwarder
  EndpointSlotConstSharedPtr slot_;
  std::unique_ptr<net::TcpForwarder> forwarder_;
  absl::Mutex mu_;
  std::mt19937 rng_ ABSL_GUARDED_BY(mu_){std::random_device{}()};
};

class DnsStrategy final : public Strategy {
 public:
  DnsStrategy(StrategyOptions options, bool max_age)
      : options_(std::move(options)), max_age_(max_age) {}

  std::string name() const override { return max_age_ ? "dns-maxage" : "dns"; }
  std::string description() const override {
    if (!max_age_) {
      return "grpc++ dns:/// resolver + round_robin on a headless Service name (real dnsmasq)";
    }
    return absl::StrCat("as dns, with the servers' MAX_CONNECTION_AGE = ",
                        options_.max_connection_age.count() / 1000.0, " s");
  }

  void ConfigureCluster(ClusterOptions& options) const override {
    if (max_age_) options.max_connection_age = options_.max_connection_age;
  }

  absl::Status Start(DemoCluster& cluster) override {
    // A records carry no port: every pod listens on the same one, as in a Deployment.
    if (auto set = cluster.registry().Current(cluster.service());
        set && !set->endpoints().empty()) {
      pod_port_ = std::to_string(set->endpoints().front().port);
    }
    // On a real cluster, cluster DNS (CoreDNS) answers; the channel asks the resolver this
    // process has, as every client in a pod does.
    if (std::string name = cluster.headless_dns_name(); !name.empty()) {
      if (auto status = ExpectResolvable(name); !status.ok()) return status;
      target_ = absl::StrCat("dns:///", name, ":", pod_port_);
      return absl::OkStatus();
    }
    dns_ = std::make_unique<DnsServer>(DnsServerOptions{
        .name = kHeadlessName, .dir = options_.work_dir, .listen_ip = kDnsServerIp});
    auto status = dns_->Start(ReadyAddresses(cluster.registry().Current(cluster.service())));
    if (!status.ok()) return status;
    // CoreDNS answers from EndpointSlices: follow the ready set.
    subscription_ = cluster.registry().Subscribe(
        cluster.service(), [this](const ServiceKey&, const EndpointSetConstSharedPtr& set) {
          dns_->SetAddresses(ReadyAddresses(set));
        });
    target_ = absl::StrCat("dns://", dns_->server(), "/", kHeadlessName, ":", pod_port_);
    return absl::OkStatus();
  }

  absl::StatusOr<std::unique_ptr<UnaryCaller>> MakeCaller(int client_index) override {
    auto args = IndependentClientArgs(client_index);
    // What every "gRPC load balancing on Kubernetes" guide says: headless Service + round_robin.
    args.SetServiceConfigJSON(R"({"loadBalancingConfig":[{"round_robin":{}}]})");
    return MakeChannelCaller(
        grpc::CreateCustomChannel(target_, grpc::InsecureChannelCredentials(), args));
  }

  void Stop() override {
    subscription_.reset();
    if (dns_) dns_->Stop();
  }

 private:
  const StrategyOptions options_;
  const bool max_age_;
  std::string pod_port_ = "50051";
  std::string target_;  // dns:///NAME:PORT on cluster DNS, or our dnsmasq's server
  std::unique_ptr<DnsServer> dns_;
  std::unique_ptr<Subscription> subscription_;
};

}  // namespace

void RegisterBaselineStrategies(StrategyCatalog& catalog) {
  catalog.Add("clusterip",
              [](const StrategyOptions&) { return std::make_unique<ClusterIpStrategy>(); });
  catalog.Add("dns",
              [](const StrategyOptions& o) { return std::make_unique<DnsStrategy>(o, false); });
  catalog.Add("dns-maxage",
              [](const StrategyOptions& o) { return std::make_unique<DnsStrategy>(o, true); });
}

}  // namespace podlb::demo
