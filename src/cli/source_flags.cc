#include "cli/source_flags.h"

#include "core/host_port.h"
#include "discovery/dns/dns_source.h"
#include "discovery/file/file_source.h"

namespace podlb::cli {

void SourceFlags::AddTo(CLI::App& app) {
  app.add_option("--kubeconfig", kubeconfig,
                 "kubeconfig file (default: in-cluster service-account config)");
  app.add_option("--context", context, "kubeconfig context (default: current-context)");
  app.add_option("--namespace", namespaces,
                 "follow every Service of this namespace (repeatable; Kubernetes source)");
  app.add_flag("--all-namespaces", all_namespaces,
               "follow every Service of every namespace: one cluster-wide list+watch per "
               "resource type (Kubernetes source; needs a ClusterRoleBinding)");
  app.add_option("--dns", dns, "re-resolve a headless Service name instead: NAME:PORT");
  app.add_option("--dns-server", dns_server, "DNS servers host:port[,host:port] (default: resolv.conf)");
  app.add_option("--dns-interval", dns_interval_seconds, "seconds between DNS resolutions")
      ->check(CLI::Range(0.05, 3600.0));
  app.add_option("--file", file, "read endpoints from a YAML/JSON file, reloaded on change");
  app.add_option("--watch-timeout", watch_timeout_seconds,
                 "seconds a Kubernetes watch stays open before it is resumed")
      ->check(CLI::Range(10, 3600));
}

absl::StatusOr<HostPort> SourceFlags::DnsHostPort() const {
  auto parsed = ParseHostPort(dns);
  if (!parsed.ok())
    return absl::InvalidArgumentError("--dns " + std::string(parsed.status().message()));
  if (parsed->port == 0)
    return absl::InvalidArgumentError("--dns \"" + dns + "\": port 0; write NAME:PORT, e.g. " +
                                      "greeter.default.svc.cluster.local:50051");
  return parsed;
}

absl::StatusOr<ServiceKey> SourceFlags::DnsKey() const {
  auto host_port = DnsHostPort();
  if (!host_port.ok()) return host_port.status();
  auto key = ServiceKey::Parse(dns);
  // A Kubernetes-shaped name publishes under its Service key, so `--dns greeter.default:50051`
  // and `default/greeter:50051` name the same thing; any other name under namespace "dns".
  if (key.ok()) return *key;
  return ServiceKey{"dns", host_port->host, std::to_string(host_port->port)};
}

absl::StatusOr<std::unique_ptr<EndpointSource>> MakeKubernetesSource(
    const SourceFlags& flags, Registry& registry, const std::vector<ServiceKey>& services);

absl::StatusOr<std::unique_ptr<EndpointSource>> SourceFlags::MakeSource(
    Registry& registry, const std::vector<ServiceKey>& services) const {
  int chosen = !file.empty() + !dns.empty() + !kubeconfig.empty();
  if (chosen > 1)
    return absl::InvalidArgumentError("choose one source: --file, --dns or --kubeconfig");
  if (all_namespaces && (!file.empty() || !dns.empty()))
    return absl::InvalidArgumentError(
        "--all-namespaces is for the Kubernetes source; drop it with --file or --dns");
  if (!file.empty()) return std::unique_ptr<EndpointSource>(new FileSource(file, registry));
  if (!dns.empty()) {
    auto key = DnsKey();
    if (!key.ok()) return key.status();
    auto resolver = MakeCaresResolver({.servers = dns_server});
    if (!resolver.ok()) return resolver.status();
    auto host_port = DnsHostPort();
    if (!host_port.ok()) return host_port.status();
    DnsSourceOptions options{
        .host = host_port->host,
        .port = host_port->port,
        .key = *key,
        .interval = std::chrono::milliseconds(static_cast<int64_t>(dns_interval_seconds * 1000))};
    return std::unique_ptr<EndpointSource>(
        new DnsSource(std::move(options), std::move(*resolver), registry));
  }
  return MakeKubernetesSource(*this, registry, services);
}

}  // namespace podlb::cli
