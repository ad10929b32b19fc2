#include "demo/strategy_registry.h"

namespace podlb::demo {

void RegisterAllStrategies(StrategyCatalog& catalog) {
  RegisterBaselineStrategies(catalog);
  RegisterPodlbStrategies(catalog);
}

std::vector<std::string> DefaultStrategies(const StrategyCatalog& catalog) {
  return catalog.names();
}

ClusterFactory DefaultClusterFactory() { return MakeSandboxCluster; }

}  // namespace podlb::demo
