// Builds the Kubernetes source from flags and the environment: a kubeconfig when --kubeconfig is
// given, else the in-cluster service account (KUBERNETES_SERVICE_HOST/PORT). One KubernetesSource
// per namespace, each following the wanted services of that namespace (or all of them for
// --namespace), so the API server sees one watch per resource type per namespace; or, with
// --all-namespaces, one source for the whole cluster (one watch per resource type in all).
#include <map>
#include <set>

#include "cli/source_flags.h"
#include "discovery/composite_source.h"
#include "discovery/kubernetes/kubernetes_source.h"

namespace podlb::cli {
namespace {

absl::StatusOr<KubeConfig> LoadConfig(const SourceFlags& flags) {
  auto config = LoadClusterConfig(flags.kubeconfig, flags.context);
  if (flags.kubeconfig.empty() && absl::IsNotFound(config.status())) {
    return absl::FailedPreconditionError(
        "no endpoint source: " + std::string(config.status().message()) +
        "; pass --kubeconfig FILE, --dns NAME:PORT or --file PATH");
  }
  return config;
}

}  // namespace

absl::StatusOr<KubeConfig> LoadClusterConfig(const std::string& kubeconfig,
                                             const std::string& context) {
  if (!kubeconfig.empty()) return LoadKubeconfig(kubeconfig, context);
  InClusterEnv env = InClusterEnvFromProcess();
  if (env.service_host.empty() || env.service_port.empty()) {
    return absl::NotFoundError("not running in a cluster (KUBERNETES_SERVICE_HOST is not set)");
  }
  return LoadInClusterConfig(env);
}

absl::StatusOr<std::unique_ptr<EndpointSource>> MakeKubernetesSource(
    const SourceFlags& flags, Registry& registry, const std::vector<ServiceKey>& services) {
  if (flags.all_namespaces && !flags.namespaces.empty()) {
    return absl::InvalidArgumentError(
        "--all-namespaces already follows every namespace; drop --namespace");
  }
  auto config = LoadConfig(flags);
  if (!config.ok()) return config.status();
  if (flags.all_namespaces) {
    // Every Service of the cluster, so the services the command names are covered too.
    KubernetesSourceOptions options{.all_namespaces = true,
                                    .watch_timeout_seconds = flags.watch_timeout_seconds};
    return std::unique_ptr<EndpointSource>(
        new KubernetesSource(*config, std::move(options), registry));
  }
  // namespace → wanted service names; an empty set means the whole namespace.
  std::map<std::string, std::set<std::string>> wanted;
  std::set<std::string> whole(flags.namespaces.begin(), flags.namespaces.end());
  for (const auto& ns : whole) wanted[ns];
  for (const auto& key : services) {
    if (!whole.count(key.ns)) wanted[key.ns].insert(key.name);
  }
  if (wanted.empty()) {
    std::string ns = config->default_namespace.empty() ? "default" : config->default_namespace;
    wanted[ns];
  }
  std::vector<std::unique_ptr<EndpointSource>> parts;
  for (const auto& [ns, names] : wanted) {
    KubernetesSourceOptions options{
        .ns = ns,
        .services = std::vector<std::string>(names.begin(), names.end()),
        .watch_timeout_seconds = flags.watch_timeout_seconds};
    parts.push_back(std::make_unique<KubernetesSource>(*config, std::move(options), registry));
  }
  if (parts.size() == 1) return std::move(parts[0]);
  return std::unique_ptr<EndpointSource>(new CompositeSource(std::move(parts)));
}

}  // namespace podlb::cli
