// podlb::CreateChannel: turns a target into a discovery source, a private Registry and an
// LbChannel that owns both.
#include <grpc/grpc.h>


#include "absl/synchronization/notification.h"
#include "client/lb_channel.h"
#include "client/target.h"
#include "core/logging.h"
#include "core/pod_identity.h"
#include "discovery/dns/dns_source.h"
#include "discovery/file/file_source.h"
#include "discovery/kubernetes/kubernetes_source.h"
#include "podlb/podlb.h"

namespace podlb {
namespace {

// The discovery one channel runs: its registry and source, stopped before the registry goes.
struct ChannelDiscovery {
  Registry registry;
  std::unique_ptr<EndpointSource> source;
  ~ChannelDiscovery() {
    if (source) source->Stop();
  }
};

// The library is the wiring edge of a user's program, so like client-go's InClusterConfig it
// reads KUBERNETES_SERVICE_HOST/PORT itself when no kubeconfig is given.
absl::StatusOr<KubeConfig> LoadKubernetesConfig(const ChannelOptions& options) {
  if (!options.kubeconfig.empty()) return LoadKubeconfig(options.kubeconfig);
  InClusterEnv env = InClusterEnvFromProcess();
  if (env.service_host.empty() || env.service_port.empty()) {
    return absl::FailedPreconditionError(
        "podlb: kubernetes:/// target outside a cluster (KUBERNETES_SERVICE_HOST is not set); "
        "set ChannelOptions::kubeconfig to a kubeconfig file");
  }
  return LoadInClusterConfig(env);
}

absl::StatusOr<std::unique_ptr<EndpointSource>> MakeSource(const client::ParsedTarget& target,
                                                           const ChannelOptions& options,
                                                           Registry& registry) {
  switch (target.scheme) {
    case client::ParsedTarget::Scheme::kFile:
      return std::unique_ptr<EndpointSource>(new FileSource(target.path, registry));
    case client::ParsedTarget::Scheme::kDns: {
      auto resolver = MakeCaresResolver({.servers = options.dns_servers});
      if (!resolver.ok()) return resolver.status();
      DnsSourceOptions dns{.host = target.host,
                           .port = target.port,
                           .key = target.key,
                           .interval = options.dns_interval};
      return std::unique_ptr<EndpointSource>(
          new DnsSource(std::move(dns), std::move(*resolver), registry));
    }
    case client::ParsedTarget::Scheme::kKubernetes: {
      auto config = LoadKubernetesConfig(options);
      if (!config.ok()) return config.status();
      KubernetesSourceOptions k8s{.ns = target.key.ns, .services = {target.key.name}};
      return std::unique_ptr<EndpointSource>(
          new KubernetesSource(*std::move(config), std::move(k8s), registry));
    }
  }
  return absl::InternalError("podlb: unhandled target scheme");
}

std::shared_ptr<grpc::ChannelInterface> LameChannel(const std::string& target,
                                                    const std::string& message) {
  grpc_init();
  grpc_channel* lame =
      grpc_lame_client_channel_create(target.c_str(), GRPC_STATUS_UNAVAILABLE, message.c_str());
  auto channel = grpc::CreateChannelInternal("", lame, {});
  grpc_shutdown();
  return channel;
}

}  // namespace

absl::StatusOr<std::shared_ptr<grpc::ChannelInterface>> CreateChannelOrError(
    const std::string& target, const ChannelOptions& options) {
  auto parsed = client::ParseTarget(target, options.default_namespace);
  if (!parsed.ok()) return parsed.status();
  if (options.subset_size > 0 && options.policy == LbPolicy::kRingHash) {
    return absl::InvalidArgumentError(
        "podlb: ChannelOptions::subset_size does not apply to kRingHash (every client must map a "
        "key to the same pod); set subset_size to 0 or choose another policy");
  }
  auto discovery = std::make_shared<ChannelDiscovery>();
  auto source = MakeSource(*parsed, options, discovery->registry);
  if (!source.ok()) return source.status();
  discovery->source = std::move(*source);

  // Wait for the first answer on the publication itself, bounded by initial_wait.
  absl::Notification first_set;
  auto waiter = discovery->registry.Subscribe(
      parsed->key, [&first_set](const ServiceKey&, const EndpointSetConstSharedPtr&) {
        if (!first_set.HasBeenNotified()) first_set.Notify();
      });
  if (absl::Status status = discovery->source->Start(); !status.ok()) return status;
  first_set.WaitForNotificationWithTimeout(absl::FromChrono(options.initial_wait));
  waiter.reset();

  Registry& registry = discovery->registry;
  return std::shared_ptr<grpc::ChannelInterface>(client::LbChannel::Create(
      registry, parsed->key,
      client::LbChannelOptions{
          .defaults = client::LibraryDefaults(options.policy, options.outlier_detection,
                                              /*zone_aware=*/!options.zone.empty(),
                                              options.hash_header, options.subset_size),
          .zone = options.zone,
          .client_id = options.client_id.empty() ? PodNameOrHostname("") : options.client_id,
          .credentials = options.credentials,
          .channel_args = options.channel_args},
      std::move(discovery)));
}

absl::StatusOr<ChannelStats> GetChannelStats(const grpc::ChannelInterface& channel) {
  const auto* lb = dynamic_cast<const client::LbChannel*>(&channel);
  if (lb == nullptr) {
    return absl::InvalidArgumentError(
        "podlb: GetChannelStats needs a channel made by podlb::CreateChannel");
  }
  return lb->Snapshot();
}

std::shared_ptr<grpc::ChannelInterface> CreateChannel(const std::string& target,
                                                      const ChannelOptions& options) {
  auto channel = CreateChannelOrError(target, options);
  if (channel.ok()) return *std::move(channel);
  std::string message(channel.status().message());
  LogError("{}", message);
  return LameChannel(target, message);
}

}  // namespace podlb
