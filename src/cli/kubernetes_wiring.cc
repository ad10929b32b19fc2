// Builds the Kubernetes source from flags and the environment (in-cluster config).
#include "cli/source_flags.h"

namespace podlb::cli {

absl::StatusOr<std::unique_ptr<EndpointSource>> MakeKubernetesSource(
    const SourceFlags&, Registry&, const std::vector<ServiceKey>&) {
  return absl::UnimplementedError("kubernetes source: not wired yet");
}

}  // namespace podlb::cli
