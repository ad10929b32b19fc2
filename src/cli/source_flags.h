// Discovery flags shared by every subcommand that reads endpoints (endpoints, control-plane,
// proxy), and the wiring that turns them into an EndpointSource. CLI thread only.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/status/statusor.h"
#include "core/host_port.h"
#include "core/registry.h"
#include "discovery/kubernetes/kube_config.h"
#include "discovery/source.h"

namespace podlb::cli {

struct SourceFlags {
  std::string kubeconfig;
  std::string context;
  std::string dns;         // NAME:PORT
  std::string dns_server;  // host:port list, empty = resolv.conf
  double dns_interval_seconds = 5;
  std::string file;
  int watch_timeout_seconds = 300;
  std::vector<std::string> namespaces;  // follow every Service of these namespaces
  bool all_namespaces = false;          // follow every Service of the cluster

  void AddTo(CLI::App& app);
  // Exactly one source: --file, --dns, or Kubernetes (--kubeconfig, else in-cluster config).
  // `services` are the keys the command wants (the Kubernetes source watches their namespaces).
  absl::StatusOr<std::unique_ptr<EndpointSource>> MakeSource(
      Registry& registry, const std::vector<ServiceKey>& services) const;
  // The key the DNS source publishes under for --dns NAME:PORT.
  absl::StatusOr<ServiceKey> DnsKey() const;
  absl::StatusOr<HostPort> DnsHostPort() const;
};

// How to reach the cluster: the kubeconfig `kubeconfig` (its `context`, empty: current) if given,
// else the in-cluster service account (KUBERNETES_SERVICE_HOST/PORT, mounted at
// $PODLB_SERVICEACCOUNT_DIR if set, as in the sandbox's process pods). NotFound when neither.
absl::StatusOr<KubeConfig> LoadClusterConfig(const std::string& kubeconfig,
                                             const std::string& context);

}  // namespace podlb::cli
